//! Links to articles as sources hand them over ([`WebLink`]): absolute http(s) only, without
//! the fragment and the parameters that only track the reader. Parsed once, where a source
//! reads an entry; the dedupe key built from such a link is the pipeline's business
//! (`crate::pipeline::canonical`). Pure: no I/O.

use url::Url;

/// Query parameters that only track the reader and never change the page.
const TRACKING_PARAMS: &[&str] = &[
    "ref", "ref_src", "ref_url", "source", "fbclid", "gclid", "dclid", "msclkid", "mc_cid",
    "mc_eid", "igshid", "yclid", "_hsenc", "_hsmi", "mkt_tok", "cmpid", "share", "s_cid",
];

/// An absolute http(s) link with a host, as shown to readers: the fragment and tracking
/// parameters (`utm_*`, `fbclid`, `ref`, ...) removed, everything else as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebLink {
    url: Url,
}

impl WebLink {
    /// Parses a link; anything but an absolute http(s) URL with a host (`javascript:`,
    /// `data:`, relative paths, over 4096 bytes) yields `None`.
    pub fn parse(raw: &str) -> Option<WebLink> {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.len() > 4096 {
            return None;
        }
        let mut url = Url::parse(trimmed).ok()?;
        if !matches!(url.scheme(), "http" | "https") {
            return None;
        }
        if url.host_str()?.is_empty() {
            return None;
        }
        url.set_fragment(None);
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| !is_tracking_param(k))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        // A query without tracking parameters is left exactly as given.
        if url.query().is_some() && kept.len() != url.query_pairs().count() {
            if kept.is_empty() {
                url.set_query(None);
            } else {
                url.query_pairs_mut().clear().extend_pairs(&kept);
            }
        }
        Some(WebLink { url })
    }

    /// The link as readers see it.
    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    /// The parsed URL (scheme and host already lower case, default port dropped).
    pub fn url(&self) -> &Url {
        &self.url
    }
}

impl From<WebLink> for String {
    fn from(link: WebLink) -> String {
        link.url.into()
    }
}

/// [`WebLink::parse`] as the string sources keep in a [`super::FetchedItem`].
pub fn web_link(raw: &str) -> Option<String> {
    WebLink::parse(raw).map(String::from)
}

fn is_tracking_param(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.starts_with("utm_") || TRACKING_PARAMS.contains(&k.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

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
            assert!(WebLink::parse(bad).is_none(), "{bad}");
        }
        assert!(WebLink::parse(&format!("https://e.com/{}", "a".repeat(4100))).is_none());
    }

    #[test]
    fn fragment_and_tracking_parameters_go_the_rest_stays() {
        for (raw, shown) in [
            (
                "https://www.Blog.Example.org/a?b=1#c",
                "https://www.blog.example.org/a?b=1",
            ),
            (
                "https://www.e.org/a/?utm_source=x&id=2#f",
                "https://www.e.org/a/?id=2",
            ),
            ("  https://e.org/a?fbclid=z  ", "https://e.org/a"),
            ("HTTPS://E.org:443/A/", "https://e.org/A/"),
            ("https://e.org/a?x=a+b&y", "https://e.org/a?x=a+b&y"),
            ("https://e.org/a?", "https://e.org/a?"),
        ] {
            assert_eq!(web_link(raw).as_deref(), Some(shown), "{raw}");
        }
    }

    #[test]
    fn parsing_a_shown_link_again_changes_nothing() {
        for raw in [
            "https://www.e.org/a/?utm_source=x&id=2&q=a%20b#f",
            "http://e.org:8080/x/?ref=hn",
            "https://e.org/p?a=1&a=2",
        ] {
            let once = web_link(raw).unwrap();
            assert_eq!(web_link(&once).as_deref(), Some(once.as_str()), "{raw}");
        }
    }
}
