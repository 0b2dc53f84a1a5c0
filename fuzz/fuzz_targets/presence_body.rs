//! Presence bodies from the network (PIDF, MS-PRES publish and categories, batched subscribe,
//! container members, roaming lists, RLMI, watcherinfo): parsing never panics, whatever the
//! declared content type.
#![no_main]

use bytes::Bytes;
use herald_presence::render::parse_body;
use libfuzzer_sys::fuzz_target;

use herald_presence::categories::{self, batch, fault, members, publish, roaming};
use herald_presence::{pidf, rlmi, watcherinfo};

const TYPES: &[&str] = &[
    pidf::CONTENT_TYPE,
    publish::CONTENT_TYPE,
    categories::CONTENT_TYPE,
    batch::CONTENT_TYPE,
    members::CONTENT_TYPE,
    roaming::SELF_CONTENT_TYPE,
    roaming::CONTACTS_CONTENT_TYPE,
    rlmi::CONTENT_TYPE,
    watcherinfo::CONTENT_TYPE,
    fault::CONTENT_TYPE,
    "multipart/related; type=\"application/rlmi+xml\"; start=\"<a>\"; boundary=b",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let content_type = TYPES[usize::from(selector) % TYPES.len()];
    let limits = herald_presence::Limits::default();
    let _ = parse_body(content_type, Bytes::copy_from_slice(body), &limits);
});
