//! Authorization / Proxy-Authorization values: parsing never panics, and a parsed Digest
//! credential prints back to text that parses to the same credential.
#![no_main]

use herald_auth::Credentials;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(Credentials::Digest(c)) = Credentials::parse(data) else { return };
    let text = c.to_string();
    match Credentials::parse(text.as_bytes()) {
        Ok(Credentials::Digest(again)) => assert_eq!(again, c, "{text}"),
        other => panic!("printed credentials do not parse back: {text:?} → {other:?}"),
    }
});
