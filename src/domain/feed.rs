//! What a feed source keeps between fetches: the validators of a conditional GET
//! ([`FeedState`]). Sources read and return it; the store keeps it per source. Pure: no I/O.

/// A feed's validators for conditional GET (`ETag`, `Last-Modified`), as the server last sent
/// them; both `None` before the first fetch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeedState {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}
