//! Canonical article URLs, the dedupe key: the same story linked from several sources, with
//! different tracking parameters, `www.`, default ports, fragments or a trailing slash, maps to
//! one string. Built by ingest from the [`WebLink`]s sources return (sources know nothing of
//! dedupe). Pure: no I/O.

use crate::domain::WebLink;

/// A link as kept by ingest: the URL as given and its canonical form and domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CanonicalLink {
    /// The URL to show readers ([`WebLink`]: fragment and tracking parameters removed,
    /// otherwise as given).
    pub url: String,
    /// The dedupe key.
    pub canonical: String,
    /// Host without `www.`, lower case.
    pub domain: String,
}

/// Parses an absolute http(s) link ([`WebLink::parse`]) and derives its dedupe key; anything
/// else (`javascript:`, `data:`, relative paths, hosts missing) yields `None`.
pub fn canonical_link(raw: &str) -> Option<CanonicalLink> {
    WebLink::parse(raw).and_then(|link| canonical_of(&link))
}

/// The dedupe key and domain of a link: `www.` dropped from the host, trailing slashes from the
/// path, the remaining query parameters written out again.
fn canonical_of(link: &WebLink) -> Option<CanonicalLink> {
    let url = link.url();
    let host = url.host_str()?.to_ascii_lowercase();
    // The url crate already lower-cases scheme and host and drops default ports.
    let domain = host.strip_prefix("www.").unwrap_or(&host).to_string();
    let mut path = url.path().to_string();
    while path.len() > 1 && path.ends_with('/') {
        path.pop();
    }
    if path == "/" {
        path.clear();
    }
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let mut canonical = format!("{}://{}{}{}", url.scheme(), domain, port, path);
    let mut pairs = url.query_pairs().peekable();
    if pairs.peek().is_some() {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            ser.append_pair(&k, &v);
        }
        canonical.push('?');
        canonical.push_str(&ser.finish());
    }
    Some(CanonicalLink {
        url: link.as_str().to_string(),
        canonical,
        domain,
    })
}

/// The canonical form alone (for `explain` and lookups).
pub fn canonicalize(raw: &str) -> Option<String> {
    canonical_link(raw).map(|l| l.canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_of_one_story_share_a_key() {
        let base = canonicalize("https://example.com/post/1").unwrap();
        for v in [
            "HTTPS://WWW.Example.COM/post/1",
            "https://example.com:443/post/1/",
            "https://example.com/post/1#comments",
            "https://example.com/post/1?utm_source=hn&utm_medium=x",
            "https://www.example.com/post/1?ref=lobsters",
            "https://example.com/post/1?fbclid=abc",
        ] {
            assert_eq!(canonicalize(v).unwrap(), base, "{v}");
        }
    }

    #[test]
    fn meaningful_query_and_path_case_are_kept() {
        assert_eq!(
            canonicalize("https://example.com/item?id=5&utm_campaign=z").unwrap(),
            "https://example.com/item?id=5"
        );
        assert_ne!(
            canonicalize("https://example.com/A").unwrap(),
            canonicalize("https://example.com/a").unwrap()
        );
        assert_eq!(
            canonicalize("http://example.com:8080/x/").unwrap(),
            "http://example.com:8080/x"
        );
        assert_eq!(
            canonicalize("https://example.com/").unwrap(),
            "https://example.com"
        );
    }

    #[test]
    fn only_absolute_http_links_are_kept() {
        for bad in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,hi",
            "/relative/path",
            "ftp://example.com/x",
            "mailto:a@b.c",
            "",
            "   ",
        ] {
            assert!(canonical_link(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn domain_drops_www() {
        let l = canonical_link("https://www.Blog.Example.org/a?b=1#c").unwrap();
        assert_eq!(l.domain, "blog.example.org");
        assert_eq!(l.url, "https://www.blog.example.org/a?b=1");
        let t = canonical_link("https://www.e.org/a/?utm_source=x&id=2#f").unwrap();
        assert_eq!(t.url, "https://www.e.org/a/?id=2");
    }
}
