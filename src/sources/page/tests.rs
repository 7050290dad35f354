//! Unit tests of page extraction on small hand-written pages.

use chrono::{TimeZone, Utc};
use url::Url;

use super::*;

const BOILERPLATE_PAGE: &str = include_str!("../../../tests/fixtures/extract/boilerplate.html");
const WINDOWS_1252_PAGE: &[u8] =
    include_bytes!("../../../tests/fixtures/extract/windows-1252.html");

fn base() -> Url {
    Url::parse("https://gazette.example/2024/03/14/story?ref=home").expect("test URL")
}

#[test]
fn boilerplate_heavy_page_keeps_the_article_paragraphs_in_order() {
    let page = extract_page(BOILERPLATE_PAGE, Some(&base()));
    assert_eq!(page.extractor, "trafilatura");
    let text = page.info.text.expect("main text");
    let paragraphs: Vec<&str> = text.split("\n\n").collect();
    // The headline is the title, not the text's first paragraph.
    assert!(text.starts_with("For twenty-six years"), "{text}");
    let first = paragraphs
        .iter()
        .position(|p| p.starts_with("For twenty-six years"))
        .expect("first paragraph");
    let order = [
        "For twenty-six years the Harrow Lane branch library",
        "The volunteers won.",
        "Keeping the doors open",
        "The branch never closed during the move.",
        "The hardest records were",
        "Records moved: 48,000",
        "The council has asked the volunteers",
    ];
    let mut at = first;
    for start in order {
        let found = paragraphs[at..]
            .iter()
            .position(|p| p.starts_with(start))
            .unwrap_or_else(|| panic!("{start:?} missing or out of order in {text:?}"));
        at += found;
    }
    for junk in [
        "cookies",
        "Share on Facebook",
        "Most read",
        "Council approves new cycle lanes",
        "All rights reserved",
        "Privacy policy",
        "dataLayer",
        "font-family",
        "Great work, everyone",
        "Opinion",
    ] {
        assert!(!text.contains(junk), "{junk:?} kept in {text:?}");
    }
    // One paragraph per block; white space inside a paragraph is one space.
    assert!(
        paragraphs
            .iter()
            .all(|p| !p.contains('\n') && !p.contains("  "))
    );
}

#[test]
fn json_ld_graph_gives_title_authors_by_id_and_date_in_utc() {
    let page = extract_page(BOILERPLATE_PAGE, Some(&base()));
    let info = page.info;
    assert_eq!(
        info.title.as_deref(),
        Some("How Harrow Lane Library rebuilt its catalogue")
    );
    assert_eq!(info.author.as_deref(), Some("Mara Okafor, Tom Reyes"));
    assert_eq!(
        info.published,
        Some(Utc.with_ymd_and_hms(2024, 3, 14, 8, 30, 0).unwrap())
    );
    assert_eq!(
        info.description.as_deref(),
        Some(
            "A volunteer team moved 48,000 records from a 1998 database to an open-source system in nine weeks, without closing the branch."
        )
    );
}

#[test]
fn relative_canonical_link_resolves_against_the_page_address() {
    let page = extract_page(BOILERPLATE_PAGE, Some(&base()));
    assert_eq!(
        page.canonical.as_deref(),
        Some("https://gazette.example/2024/03/harrow-lane-catalogue")
    );
    // Without the page's address a relative link cannot be made absolute.
    assert_eq!(extract_page(BOILERPLATE_PAGE, None).canonical, None);
    let odd = r#"<html><head><link rel="canonical" href="javascript:alert(1)"><meta property="og:url" content="//cdn.example/a"></head><body></body></html>"#;
    assert_eq!(
        extract_page(odd, Some(&base())).canonical.as_deref(),
        Some("https://cdn.example/a")
    );
}

#[test]
fn open_graph_and_meta_tags_when_there_is_no_json_ld() {
    let html = r#"<html><head>
<title>Ignored title - Site</title>
<meta property="og:title" content="  The  OG title ">
<meta property="og:description" content="OG description.">
<meta name="author" content="By Jane Doe">
<meta property="article:published_time" content="2021-06-30T23:15:00-04:00">
</head><body><p>Short.</p></body></html>"#;
    let info = extract(html);
    assert_eq!(info.title.as_deref(), Some("The OG title"));
    assert_eq!(info.description.as_deref(), Some("OG description."));
    assert_eq!(info.author.as_deref(), Some("Jane Doe"));
    assert_eq!(
        info.published,
        Some(Utc.with_ymd_and_hms(2021, 7, 1, 3, 15, 0).unwrap())
    );
}

#[test]
fn title_tag_loses_the_site_name_and_time_element_gives_the_date() {
    let html = r#"<html><head><title>Gazette — Bridge reopens after repairs</title>
<meta name="application-name" content="Gazette"></head>
<body><article><time datetime="2022-02-03">3 Feb</time><p>Text.</p></article></body></html>"#;
    let info = extract(html);
    assert_eq!(info.title.as_deref(), Some("Bridge reopens after repairs"));
    assert_eq!(
        info.published,
        Some(Utc.with_ymd_and_hms(2022, 2, 3, 0, 0, 0).unwrap())
    );
    // No site name: the <h1> the title starts with.
    let html = r#"<html><head><title>Bridge reopens | Gazette</title></head><body><h1>Bridge reopens</h1></body></html>"#;
    assert_eq!(extract(html).title.as_deref(), Some("Bridge reopens"));
    // Neither: the whole title.
    let html = r#"<html><head><title>Rust: the good parts</title></head><body></body></html>"#;
    assert_eq!(extract(html).title.as_deref(), Some("Rust: the good parts"));
}

#[test]
fn json_ld_with_comments_line_breaks_and_a_list_of_types() {
    let html = "<html><head><script type=\"application/ld+json\"><!--\n[{\"@type\": \"Organization\", \"name\": \"Org\"},\n{\"@type\": [\"BlogPosting\", \"CreativeWork\"], \"headline\": \"Line\nbreak\", \"author\": \"By Ann Lee\", \"dateCreated\": \"2020-01-02 03:04:05\"}];\n--></script></head><body></body></html>";
    let info = extract(html);
    assert_eq!(info.title.as_deref(), Some("Line break"));
    assert_eq!(info.author.as_deref(), Some("Ann Lee"));
    assert_eq!(
        info.published,
        Some(Utc.with_ymd_and_hms(2020, 1, 2, 3, 4, 5).unwrap())
    );
}

#[test]
fn author_links_and_handles_are_not_names() {
    let html = r#"<html><head><meta property="article:author" content="https://facebook.com/someone"><meta name="author" content="@handle"></head>
<body><span itemprop="author" itemscope><span itemprop="name">Ravi Shankar</span></span></body></html>"#;
    assert_eq!(extract(html).author.as_deref(), Some("Ravi Shankar"));
}

#[test]
fn dates_in_the_forms_pages_use() {
    let at = |y, mo, d, h, mi, s| Some(Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap());
    assert_eq!(parse_date("2024-05-01T10:00:00Z"), at(2024, 5, 1, 10, 0, 0));
    assert_eq!(
        parse_date("2024-05-01T10:00:00.123+0200"),
        parse_date("2024-05-01T08:00:00.123Z")
    );
    assert_eq!(
        parse_date("2024-05-01T10:00+02:00"),
        at(2024, 5, 1, 8, 0, 0)
    );
    assert_eq!(parse_date("2024-05-01 10:00:00"), at(2024, 5, 1, 10, 0, 0));
    assert_eq!(parse_date(" 2024-05-01 "), at(2024, 5, 1, 0, 0, 0));
    assert_eq!(
        parse_date("Wed, 01 May 2024 10:00:00 GMT"),
        at(2024, 5, 1, 10, 0, 0)
    );
    assert_eq!(parse_date("2024-05-01Tgarbage"), at(2024, 5, 1, 0, 0, 0));
    assert_eq!(parse_date("May 1st"), None);
    assert_eq!(parse_date("0001-01-01"), None);
    assert_eq!(parse_date("2024-13-01"), None);
    assert_eq!(parse_date(""), None);
}

#[test]
fn windows_1252_page_decodes_by_its_meta_declaration() {
    let html = decode(WINDOWS_1252_PAGE, None);
    let page = extract_page(&html, None);
    let text = page.info.text.expect("text");
    assert!(
        text.contains("A small “noisette” at the café on Rue Mércière now costs €2.40"),
        "{text}"
    );
    assert!(text.contains("a naïve visitor"), "{text}");
    assert_eq!(page.info.title.as_deref(), Some("Café prices in Lyon"));
    assert_eq!(page.info.author.as_deref(), Some("Zoé Lefèvre"));
}

#[test]
fn charset_by_bom_then_header_then_meta_then_utf8_else_windows_1252() {
    // The header's charset wins over the page's own declaration.
    let latin = b"<meta charset=\"utf-8\"><p>caf\xe9</p>";
    assert!(decode(latin, Some("text/html; charset=ISO-8859-1")).contains("café"));
    assert!(decode(latin, Some("text/html; charset=\"latin1\"")).contains("café"));
    // A meta charset in the page.
    assert!(decode(b"<meta charset='iso-8859-15'><p>\xa4</p>", None).contains('€'));
    // Neither, not valid UTF-8: windows-1252; valid UTF-8: UTF-8.
    assert!(decode(b"<p>\x93hi\x94</p>", None).contains("“hi”"));
    assert!(decode("<p>café</p>".as_bytes(), Some("text/html")).contains("café"));
    // A byte order mark wins over everything.
    let mut utf16: Vec<u8> = vec![0xFF, 0xFE];
    utf16.extend("<p>é</p>".encode_utf16().flat_map(u16::to_le_bytes));
    assert_eq!(
        decode(&utf16, Some("text/html; charset=iso-8859-1")),
        "<p>é</p>"
    );
    // A page declaring UTF-16 about itself is read as UTF-8.
    assert!(decode("<meta charset=utf-16><p>é</p>".as_bytes(), None).contains("<p>é</p>"));
    // An unknown label is ignored.
    assert!(decode("<p>é</p>".as_bytes(), Some("text/html; charset=klingon")).contains('é'));
}

#[test]
fn extract_document_decodes_and_resolves_with_the_given_url() {
    let info = extract_document(
        WINDOWS_1252_PAGE,
        Some("text/html; charset=windows-1252"),
        Some("https://notes.example/lyon"),
    );
    assert!(info.text.as_deref().is_some_and(|t| t.contains("café")));
}

#[test]
fn huge_page_is_capped_at_a_word_on_a_char_boundary() {
    let para = "Ünïcödé wörds fill this paragraph about the long history of the river crossing. ";
    let mut html = String::from("<html><body><article>");
    for i in 0..600 {
        html.push_str(&format!("<p>{i} {}</p>", para.repeat(3)));
    }
    html.push_str("</article></body></html>");
    assert!(html.len() > MAX_PAGE_TEXT_BYTES + 40_000);
    let text = extract(&html).text.expect("text");
    assert!(text.len() <= MAX_PAGE_TEXT_BYTES, "{}", text.len());
    assert!(text.len() > MAX_PAGE_TEXT_BYTES - 1000, "{}", text.len());
    assert!(text.starts_with("0 Ünïcödé"));
    assert!(!text.ends_with(' '));
}

#[test]
fn deeply_nested_page_falls_back_without_overflowing_the_stack() {
    let depth = 4 * MAX_TREE_DEPTH;
    let html = format!(
        "<html><body><article>{}<p>Deep text survives.</p>{}</article></body></html>",
        "<div>".repeat(depth),
        "</div>".repeat(depth)
    );
    let page = extract_page(&html, None);
    assert_eq!(page.extractor, "fallback");
    assert_eq!(page.info.text.as_deref(), Some("Deep text survives."));
}

#[test]
fn empty_and_garbage_input_give_nothing_and_do_not_panic() {
    for html in ["", "   ", "<html><body><script>x()</script></body></html>"] {
        let page = extract_page(html, None);
        assert_eq!(page.info.text, None, "{html:?}");
        assert_eq!(page.extractor, "none");
    }
    // Stray markup is text; control characters never reach it.
    for html in [
        "<<<>>>",
        "\u{0}\u{1}bin\u{7}ary\u{fffd}",
        "</p></div><p <p>",
    ] {
        let text = extract_page(html, None).info.text.unwrap_or_default();
        assert!(!text.chars().any(char::is_control), "{text:?}");
    }
}

#[test]
fn short_page_text_comes_from_the_fallback_when_the_extractor_finds_nothing() {
    let html = r#"<html><head><meta name="Description" content=" Plain  desc "></head><body><nav><p>Home</p></nav><p>Body text only.</p></body></html>"#;
    let p = extract(html);
    assert_eq!(p.description.as_deref(), Some("Plain desc"));
    assert_eq!(p.text.as_deref(), Some("Body text only."));
}
