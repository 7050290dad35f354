//! Delivery: the outbox (claim under lease, retry with backoff, bounces, suppression) and the transports (SMTP via lettre, .eml files). The only place that talks SMTP.
