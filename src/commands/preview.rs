//! `tidings preview --topic SLUG [--at TIME] --format text|html|eml`: print the digest compile
//! would freeze, storing nothing new but fetched data. `html` is the email's HTML part and `eml`
//! the complete message, both for a sample subscriber.

use anyhow::Context as _;
use std::io::Write;

use super::{CommandError, CommandResult, Context, now};
use crate::cli::PreviewFormat;
use crate::domain::SubscriberEmail;
use crate::render::{PreparedDigest, Recipient};
use crate::tokens::TokenSigner;

pub async fn run(ctx: &Context, args: crate::cli::PreviewArgs) -> CommandResult {
    let topic = ctx.topic(&args.topic)?;
    let at = args.at.unwrap_or_else(now);
    let mut digest = crate::pipeline::preview_digest(&ctx.settings, &ctx.store, topic, at).await?;
    if args.format == PreviewFormat::Text {
        print!(
            "{}",
            crate::render::digest_text(&digest, &ctx.settings.newsletter.title)
        );
        return Ok(());
    }
    if digest.entries.is_empty() {
        return Err(CommandError::Failed(anyhow::anyhow!(
            "the {} digest for {} to {} has no articles; nothing to preview",
            topic.slug,
            digest.window_start.format("%Y-%m-%d %H:%M UTC"),
            digest.window_end.format("%Y-%m-%d %H:%M UTC"),
        )));
    }
    // Not frozen yet: the preview stands in for the issue with id 0.
    digest.issue_id.get_or_insert(0);
    let prepared = PreparedDigest::prepare(&ctx.settings, &digest, ctx.dkim.clone())
        .context("rendering the digest")?;
    let tokens = TokenSigner::from_settings(&ctx.settings.newsletter);
    let recipient = Recipient {
        subscriber_id: 0,
        email: SubscriberEmail::parse("sample@example.com").context("sample address")?,
    };
    let mut out = std::io::stdout().lock();
    match args.format {
        PreviewFormat::Html => out.write_all(prepared.html_for(&tokens, &recipient).as_bytes()),
        _ => {
            let message = prepared
                .message_for(&tokens, &recipient, chrono::Utc::now())
                .context("rendering the message")?;
            out.write_all(&message.raw)
        }
    }
    .context("writing to stdout")?;
    Ok(())
}
