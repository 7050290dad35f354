//! Pure domain types with no I/O: subscriber addresses, topic slugs, statuses, articles and
//! digests, article links and a feed's conditional-GET state. Everything that enters tidings
//! from outside is parsed into one of these once.

mod article;
mod email;
mod feed;
mod link;
mod subscriber;

pub use article::{Article, ArticleSource, Digest, DigestEntry, FetchedItem, PageInfo, SourceLine};
pub use email::{EmailError, SubscriberEmail, ascii_envelope_address, parse_mailbox};
pub use feed::FeedState;
pub use link::{WebLink, web_link};
pub use subscriber::{
    ConsentSource, DeliveryStatus, PreferencesChange, SubscriberStatus, TopicSlug,
    preferences_change,
};
