//! The web app: subscribe, confirm, preferences, unsubscribe (RFC 8058), archive, health and metrics.
