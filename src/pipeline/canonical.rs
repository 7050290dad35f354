//! Canonical article URLs, the dedupe key: the same story linked from several sources, with
//! different tracking parameters, `www.`, default ports, fragments or a trailing slash, maps to
//! one string. Built by ingest from the [`WebLink`]s sources return (sources know nothing of
//! dedupe). [`link_target`] goes further for story merging (`pipeline::story`): the scheme,
//! mobile and AMP hosts, `/amp` and `index.html` tails do not make another page. Pure: no I/O.

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

/// The page a canonical URL points at, for merging stories: the scheme dropped, `m.`,
/// `mobile.` and `amp.` hosts read as the site itself, and a trailing `/amp`, `/index.html`,
/// `/index.htm` or `/index.php` dropped. Two articles with one link target are one story.
pub fn link_target(canonical: &str) -> String {
    let rest = canonical
        .split_once("://")
        .map_or(canonical, |(_, rest)| rest);
    let (host, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let host = ["m.", "mobile.", "amp."]
        .iter()
        .find_map(|p| host.strip_prefix(p))
        .filter(|h| h.contains('.'))
        .unwrap_or(host);
    let (path, query) = path.split_at(path.find('?').unwrap_or(path.len()));
    let mut path = path;
    for tail in ["/amp", "/index.html", "/index.htm", "/index.php"] {
        if let Some(p) = path.strip_suffix(tail) {
            path = p;
        }
    }
    format!("{host}{}{query}", path.trim_end_matches('/'))
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
    fn link_targets_ignore_scheme_mobile_and_amp_variants() {
        let t = |u: &str| link_target(&canonicalize(u).unwrap());
        let base = t("https://example.com/post/1");
        for v in [
            "http://example.com/post/1",
            "https://m.example.com/post/1",
            "https://amp.example.com/post/1/",
            "https://example.com/post/1/amp",
            "https://example.com/post/1/index.html",
        ] {
            assert_eq!(t(v), base, "{v}");
        }
        assert_eq!(base, "example.com/post/1");
        assert_ne!(t("https://example.com/post/2"), base);
        assert_ne!(t("https://other.com/post/1"), base);
        assert_eq!(t("https://example.com/item?id=5"), "example.com/item?id=5");
        assert_ne!(t("https://m.com/x"), t("https://com/x"));
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
