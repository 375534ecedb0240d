//! `kiln diff` and `kiln verify`: proving an image was built from a given
//! source, and when it was not, saying exactly why.
//!
//! [`source`] opens any image reference into one model, [`diff`] compares
//! two down to the cause, [`report`] renders the result, [`rebuild`] is
//! `kiln verify`.
//!
//! # JSON report (`kiln diff --format json`)
//!
//! ```text
//! { "identical": bool,
//!   "a"/"b": { "reference", "kind" (oci-layout|oci-archive|docker-archive|store|registry), "digest" },
//!   "notes": [string],
//!   "index": [FieldDiff],
//!   "platforms": [ { "platform", "only_in" ("a"|"b"|null),
//!       "manifest_digest": FieldDiff|null, "manifest": [FieldDiff],
//!       "config_digest": FieldDiff|null, "config": [FieldDiff],
//!       "layers": [ { "layer" (1-based), "created_by", "created_by_b",
//!           "a"/"b": { "digest", "size", "media_type", "diff_id" }|null,
//!           "compression": [FieldDiff], "compression_only": bool,
//!           "files": [ { "path", "change" (added|removed|changed),
//!                        "fields": [FieldDiff],
//!                        "first_difference": { "line", "a", "b" }|null } ],
//!           "tar": [FieldDiff] } ] } ] }
//! FieldDiff = { "field": "config.Env.PATH", "a": JSON value|null, "b": ... }
//! ```
//!
//! File fields: `kind`, `content` (`{size, sha256}`), `mode` ("0644"),
//! `uid`, `gid`, `uname`, `gname`, `mtime`, `link`, `header format`
//! (ustar|pax|gnu|v7), `pax.KEY`. Compression fields: `media type`,
//! `compression`, `gzip.flags|mtime|xfl|os|name`, `compressed size`.

pub mod cli;
pub mod diff;
pub mod fields;
pub mod layer;
pub mod rebuild;
pub mod report;
pub mod source;
pub mod text;
