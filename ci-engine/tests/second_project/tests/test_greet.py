import unittest

from greet import greeting


class GreetingTest(unittest.TestCase):
    def test_greets_by_name(self) -> None:
        self.assertEqual(greeting("world"), "Hello, world!")


if __name__ == "__main__":
    unittest.main()
