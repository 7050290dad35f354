//! Unit tests of the bounce parser: one per kind on small hand-written messages, the
//! classification of replies, our Message-ID form, and a property test that arbitrary bytes,
//! truncated messages and odd charsets never panic.

use proptest::prelude::*;

use super::*;

const DSN: &str = "From: MAILER-DAEMON@mx.example.org\r\nTo: news@example.com\r\nSubject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you that your message could not be delivered.\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\nFinal-Recipient: rfc822; gone@Example.ORG\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 <gone@example.org>: Recipient address rejected:\r\n  User unknown in local recipient table\r\n\r\nFinal-Recipient: rfc822; full@example.org\r\nAction: failed\r\nStatus: 5.2.2\r\nDiagnostic-Code: smtp; 552 5.2.2 Mailbox full\r\n\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: news@example.com\r\nTo: gone@example.org\r\nMessage-ID: <tidings.rust.20260209.7.42@example.com>\r\nSubject: Rust digest\r\n\r\n--b--\r\n";

#[test]
fn a_dsn_gives_one_recipient_per_block_with_hard_and_soft() {
    let report = parse(DSN.as_bytes());
    assert_eq!(report.kind, Kind::Bounce);
    assert_eq!(report.recipients.len(), 2, "{report:?}");
    let gone = &report.recipients[0];
    assert_eq!(gone.email, "gone@example.org");
    assert_eq!(gone.status.as_deref(), Some("5.1.1"));
    assert_eq!(gone.smtp_code, Some(550));
    assert_eq!(gone.action.as_deref(), Some("failed"));
    assert!(gone.hard);
    let full = &report.recipients[1];
    assert_eq!(full.status.as_deref(), Some("5.2.2"));
    assert!(!full.hard);
    assert_eq!(full.reason, "mailbox-full");
    assert_eq!(
        report.original_message_id.as_deref().and_then(our_message),
        Some(OurMessage {
            issue_id: 7,
            subscriber_id: 42
        })
    );
}

#[test]
fn recipients_without_a_blank_line_between_them_are_still_two() {
    let joined = DSN.replace("Mailbox full\r\n  User unknown", "").replace(
        "User unknown in local recipient table\r\n\r\nFinal-Recipient",
        "User unknown in local recipient table\r\nFinal-Recipient",
    );
    let report = parse(joined.as_bytes());
    let emails: Vec<&str> = report.recipients.iter().map(|r| r.email.as_str()).collect();
    assert_eq!(
        emails,
        ["gone@example.org", "full@example.org"],
        "{report:?}"
    );
    assert!(report.recipients[0].hard);
    assert!(!report.recipients[1].hard);
}

#[test]
fn a_delayed_or_delivered_dsn_is_never_hard() {
    let delayed = DSN
        .replace(
            "Action: failed\r\nStatus: 5.1.1",
            "Action: delayed\r\nStatus: 4.4.1",
        )
        .replace("550 5.1.1", "450 4.4.1");
    let report = parse(delayed.as_bytes());
    assert!(!report.recipients[0].hard, "{report:?}");
    let delivered = DSN.replace("Action: failed", "Action: delivered");
    let report = parse(delivered.as_bytes());
    assert_eq!(report.kind, Kind::DeliveryReport, "{report:?}");
    assert!(report.recipients.iter().all(|r| !r.hard));
}

#[test]
fn a_qmail_style_bounce_names_each_recipient() {
    let mail = "From: MAILER-DAEMON@mx.example.net\nTo: news@example.com\nSubject: failure notice\n\nHi. This is the qmail-send program at mx.example.net.\nI'm afraid I wasn't able to deliver your message to the following addresses.\n\n<nobody@example.net>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n<busy@example.net>:\n192.0.2.1 does not like recipient.\nRemote host said: 552 5.2.2 Mailbox is full\n\n--- Below this line is a copy of the message.\n\nTo: someone@example.org\n";
    let report = parse(mail.as_bytes());
    assert_eq!(report.kind, Kind::Bounce);
    let emails: Vec<&str> = report.recipients.iter().map(|r| r.email.as_str()).collect();
    assert_eq!(
        emails,
        ["nobody@example.net", "busy@example.net"],
        "{report:?}"
    );
    assert!(report.recipients[0].hard);
    assert!(!report.recipients[1].hard);
    assert_eq!(report.recipients[1].smtp_code, Some(552));
}

#[test]
fn an_arf_report_is_a_complaint_with_its_feedback_type() {
    let mail = "From: fbl@mail.example.net\nTo: abuse@example.com\nSubject: FW: Rust digest\nMIME-Version: 1.0\nContent-Type: multipart/report; report-type=feedback-report; boundary=\"x\"\n\n--x\nContent-Type: text/plain\n\nThis is an email abuse report.\n\n--x\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nUser-Agent: SomeGenerator/1.0\nVersion: 1\nOriginal-Rcpt-To: <reader@example.net>\n\n--x\nContent-Type: message/rfc822\n\nFrom: news@example.com\nTo: reader@example.net\nMessage-ID: <tidings.rust.20260209.7.43@example.com>\nSubject: Rust digest\n\nbody\n--x--\n";
    let report = parse(mail.as_bytes());
    assert_eq!(report.kind, Kind::Complaint);
    assert_eq!(report.feedback_type.as_deref(), Some("abuse"));
    assert_eq!(report.recipients[0].email, "reader@example.net");
    assert!(!report.recipients[0].hard);
}

#[test]
fn an_out_of_office_reply_is_an_auto_reply_not_a_bounce() {
    let mail = "From: Reader <reader@example.net>\nTo: news@example.com\nSubject: Out of Office: Rust digest\nAuto-Submitted: auto-replied\n\nI am away until Monday; your mail could not be read.\n";
    let report = parse(mail.as_bytes());
    assert_eq!(report.kind, Kind::AutoReply);
    assert_eq!(report.recipients[0].email, "reader@example.net");
    assert!(!report.recipients[0].hard);
}

#[test]
fn an_ordinary_message_is_unknown() {
    let mail = "From: Reader <reader@example.net>\nTo: news@example.com\nSubject: Thanks for the digest\n\nGreat issue this week.\n";
    assert_eq!(parse(mail.as_bytes()).kind, Kind::Unknown);
    assert_eq!(parse(b"").kind, Kind::Unknown);
    let about_an_error = "From: Reader <reader@example.net>\nTo: news@example.com\nSubject: Re: error in this week's digest\n\nThe link to friend@example.org's post is wrong.\n";
    let report = parse(about_an_error.as_bytes());
    assert_eq!(report.kind, Kind::Unknown, "{report:?}");
}

#[test]
fn replies_are_sorted_into_hard_and_soft() {
    use super::reason::classify;
    let cases = [
        (Some("5.1.1"), "550 5.1.1 user unknown", true),
        (Some("5.0.0"), "550 Host unknown", true),
        (
            Some("5.1.10"),
            "556 5.1.10 domain does not accept mail (null MX)",
            true,
        ),
        (Some("5.2.2"), "552 mailbox full", false),
        (Some("5.1.1"), "550 5.1.1 mailbox is full", false),
        (Some("5.7.1"), "554 blocked by spamhaus", false),
        (Some("4.4.7"), "Message expired", false),
        (Some("4.1.1"), "450 user unknown", false),
        (Some("5.4.4"), "Name or service not known", true),
        (None, "Connection timed out", false),
        (
            Some("5.1.7"),
            "SMTP error after MAIL FROM:<a@b.example>: 550 5.1.7 No such domain",
            false,
        ),
        (
            Some("5.4.4"),
            "Sorry, I couldn't find a mail exchanger",
            true,
        ),
    ];
    for (status, text, hard) in cases {
        assert_eq!(classify(status, text, None).hard, hard, "{status:?} {text}");
    }
}

#[test]
fn a_bare_user_unknown_is_hard_only_when_something_ties_it_to_the_address() {
    use super::reason::{after_data, classify};
    let cases = [
        // The bare phrase with no code and no stage: filters answer this way too.
        (None, "kijitora@example.co.jp [User unknown]", false),
        (Some("5.0.0"), "550 : User unknown", false),
        // RFC 5321's generic 550 text covers policy refusals.
        (
            None,
            "550 Requested action not taken: mailbox unavailable",
            false,
        ),
        // A specific status about the address, a reply to RCPT TO, other words for a gone
        // address: hard.
        (
            Some("5.1.1"),
            "550 5.1.1 <a@example.org>... User unknown",
            true,
        ),
        (None, "550 User unknown (in reply to RCPT TO command)", true),
        (
            Some("5.0.0"),
            "Address not found. 550 <a@example.org>: User unknown",
            true,
        ),
        (Some("5.0.0"), "550 a@example.org... No such user", true),
        // Phrases that need no tie keep their verdict.
        (Some("5.0.0"), "550 Recipient not found", true),
    ];
    for (status, text, hard) in cases {
        let verdict = after_data(classify(status, text, Some("failed")), status, text);
        assert_eq!(verdict.hard, hard, "{status:?} {text}");
    }
}

#[test]
fn a_user_unknown_answered_to_data_is_soft_unless_the_status_names_the_address() {
    use super::reason::{after_data, classify};
    let transcript = ">>> DATA\n<<< 550 5.0.0 <a@example.org>... User unknown\n";
    let verdict = classify(Some("5.0.0"), transcript, Some("failed"));
    assert!(!after_data(verdict, Some("5.0.0"), transcript).hard);
    let at_rcpt = ">>> RCPT To:<a@example.org>\n<<< 550 5.0.0 User unknown\n>>> DATA\n<<< 503 5.0.0 Need RCPT\n";
    let verdict = classify(Some("5.0.0"), at_rcpt, Some("failed"));
    assert!(after_data(verdict, Some("5.0.0"), at_rcpt).hard);
    let verdict = classify(Some("5.1.1"), transcript, Some("failed"));
    assert!(after_data(verdict, Some("5.1.1"), transcript).hard);
}

#[test]
fn a_transcript_gives_its_failure_not_its_greeting() {
    let mail = "From: MAILER-DAEMON@mx.example.org\nTo: news@example.com\nSubject: Undelivered Mail Returned to Sender\n\n<a@example.org>: transcript follows\n Out: 250 2.0.0 Ok\n In:  DATA\n Out: 451 4.3.0 Error: queue file write error\n";
    let report = parse(mail.as_bytes());
    assert_eq!(report.recipients[0].status.as_deref(), Some("4.3.0"));
    assert_eq!(report.recipients[0].smtp_code, Some(451));
    assert!(!report.recipients[0].hard);
}

#[test]
fn only_our_digest_message_ids_are_ours() {
    assert_eq!(
        our_message("<tidings.distributed-systems.20260209.12.5@news.example.com>"),
        Some(OurMessage {
            issue_id: 12,
            subscriber_id: 5
        })
    );
    assert_eq!(our_message("<abc@example.com>"), None);
    assert_eq!(our_message("tidings.rust.x.y@example.com"), None);
}

#[test]
fn huge_input_is_cut_not_refused() {
    let mut mail = DSN.as_bytes().to_vec();
    mail.extend(std::iter::repeat_n(b'x', MAX_MESSAGE_BYTES));
    assert_eq!(parse(&mail).kind, Kind::Bounce);
}

#[test]
fn user_unknown_wording_under_a_policy_status_is_filtered_and_soft() {
    let policy = DSN
        .replace("Status: 5.1.1", "Status: 5.0.0")
        .replace(
            "550 5.1.1 <gone@example.org>: Recipient address rejected:\r\n  User unknown in local recipient table",
            "550 5.7.1 550 User Unknown: gone@example.org",
        );
    let report = parse(policy.as_bytes());
    let gone = &report.recipients[0];
    assert_eq!(gone.status.as_deref(), Some("5.7.1"), "{report:?}");
    assert!(!gone.hard, "{report:?}");
    assert_eq!(gone.reason, "filtered");
    // The same words under an address status stay hard.
    assert!(parse(DSN.as_bytes()).recipients[0].hard);
}

#[test]
fn a_display_name_that_looks_like_an_address_is_not_the_recipient() {
    let mail = "From: Mail Delivery System <Mailer-Daemon@mx.example.net>\nTo: news@example.com\nSubject: Mail failure - malformed recipient address\n\nA message that you sent contained one or more recipient addresses that were\nincorrectly constructed:\n\n  someone@example.org <reader@example.net>: malformed address: <reader@example.net> may not follow someone@example.org\n\nThis address has been ignored.\n";
    let report = parse(mail.as_bytes());
    assert_eq!(report.kind, Kind::Bounce, "{report:?}");
    let emails: Vec<&str> = report.recipients.iter().map(|r| r.email.as_str()).collect();
    assert_eq!(emails, ["reader@example.net"], "{report:?}");
}

#[test]
fn each_sendmail_recipient_gets_only_its_own_status_line() {
    let mail = "From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.com>\nTo: news@example.com\nSubject: Returned mail: see transcript for details\n\n   ----- Transcript of session follows -----\n421 a.example.org (smtp)... Deferred: Connection reset by peer during result wait with a.example.org\n554 <reader@a.example.org>... Remote protocol error: Connection reset by peer during result wait\n550 b.example.net (smtp)... 550 Host unknown\n554 <other@b.example.net>... 550 Host unknown (Authoritative answer from name server)\n\n   ----- Unsent message follows -----\nFrom: news@example.com\n";
    let report = parse(mail.as_bytes());
    let emails: Vec<&str> = report.recipients.iter().map(|r| r.email.as_str()).collect();
    assert_eq!(
        emails,
        ["reader@a.example.org", "other@b.example.net"],
        "{report:?}"
    );
    assert!(!report.recipients[0].hard, "{report:?}");
    assert_eq!(report.recipients[0].reason, "network");
    assert!(report.recipients[1].hard, "{report:?}");
    assert_eq!(report.recipients[1].reason, "unknown-domain");
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse(&bytes);
    }

    #[test]
    fn truncated_and_mangled_reports_never_panic(cut in 0usize..1200, byte in any::<u8>(), at in 0usize..1200) {
        let mut mail = DSN.as_bytes()[..cut.min(DSN.len())].to_vec();
        if at < mail.len() {
            mail[at] = byte;
        }
        let _ = parse(&mail);
        let odd = DSN.replace("Content-Type: text/plain", "Content-Type: text/plain; charset=x-unknown-\u{fffd}\r\nContent-Transfer-Encoding: base64");
        let _ = parse(odd.as_bytes());
    }
}
