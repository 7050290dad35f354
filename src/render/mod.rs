//! Rendering: askama email templates -> complete messages (subject, HTML with inlined CSS, text, headers, DKIM).
