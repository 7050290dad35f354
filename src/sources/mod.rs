//! Sources: one file per kind (hacker_news, feed, lobsters) and the shared HTTP client with its limits and SSRF guard.
