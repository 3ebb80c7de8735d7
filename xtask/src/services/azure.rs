//! Creating an Azure Blob container: object_store cannot, so xtask sends the one
//! SharedKey-signed `PUT ?restype=container` request itself.

use std::time::{Duration, SystemTime};

use anyhow::{Context as _, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use ci_engine::http;

const API_VERSION: &str = "2021-08-06";

/// The string to sign for a body-less request (Blob service, SharedKey, version ≥ 2015-02-21:
/// a zero Content-Length is an empty line).
fn string_to_sign(
    method: &str,
    date: &str,
    account: &str,
    path: &str,
    query: &[(&str, &str)],
) -> String {
    let mut resource = format!("/{account}{path}");
    let mut params: Vec<_> = query.to_vec();
    params.sort_unstable();
    for (name, value) in params {
        resource.push_str(&format!("\n{}:{value}", name.to_lowercase()));
    }
    // VERB, then 11 standard headers we leave empty, then the canonical x-ms-* headers.
    format!(
        "{method}\n{}x-ms-date:{date}\nx-ms-version:{API_VERSION}\n{resource}",
        "\n".repeat(11)
    )
}

fn sign(key_base64: &str, text: &str) -> Result<String> {
    let key = STANDARD
        .decode(key_base64)
        .context("the Azure account key is not valid base64")?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).context("unusable Azure account key")?;
    mac.update(text.as_bytes());
    Ok(STANDARD.encode(mac.finalize().into_bytes()))
}

/// Create `container` under `endpoint` (`http://host:port/<account>`); an existing one is fine.
pub fn create_container(endpoint: &str, account: &str, key: &str, container: &str) -> Result<()> {
    let base = http::Url::parse(endpoint)?;
    let path = format!("{}/{container}", base.path.trim_end_matches('/'));
    let date = httpdate::fmt_http_date(SystemTime::now());
    let signature = sign(
        key,
        &string_to_sign("PUT", &date, account, &path, &[("restype", "container")]),
    )?;
    let url = format!("http://{}:{}{path}?restype=container", base.host, base.port);
    let response = http::request(
        "PUT",
        &url,
        &[
            ("x-ms-date", date),
            ("x-ms-version", API_VERSION.to_string()),
            ("Authorization", format!("SharedKey {account}:{signature}")),
        ],
        Duration::from_secs(10),
    )
    .with_context(|| format!("could not reach Azure at {endpoint}"))?;
    match response.status {
        201 | 409 => Ok(()),
        status => bail!(
            "creating container {container} at {endpoint} answered {status}: {}",
            response.body
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canonical_resource_of_a_path_style_emulator_request() {
        let text = string_to_sign(
            "PUT",
            "Mon, 23 Nov 2026 10:00:00 GMT",
            "devstoreaccount1",
            "/devstoreaccount1/testcontainer",
            &[("restype", "container")],
        );
        assert_eq!(
            text,
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:Mon, 23 Nov 2026 10:00:00 GMT\n\
             x-ms-version:2021-08-06\n/devstoreaccount1/devstoreaccount1/testcontainer\n\
             restype:container"
        );
    }

    #[test]
    fn signatures_are_hmac_sha256_of_the_decoded_key() {
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"), RFC 4231-style vector.
        let key = STANDARD.encode(b"key");
        assert_eq!(
            sign(&key, "The quick brown fox jumps over the lazy dog").unwrap(),
            STANDARD.encode([
                0xf7, 0xbc, 0x83, 0xf4, 0x30, 0x53, 0x84, 0x24, 0xb1, 0x32, 0x98, 0xe6, 0xaa, 0x6f,
                0xb1, 0x43, 0xef, 0x4d, 0x59, 0xa1, 0x49, 0x46, 0x17, 0x59, 0x97, 0x47, 0x9d, 0xbc,
                0x2d, 0x1a, 0x3c, 0xd8
            ])
        );
        assert!(sign("not base64!", "x").is_err());
    }
}
