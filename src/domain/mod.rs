//! Pure domain types with no I/O: subscriber addresses, topic slugs, statuses and the subscriber
//! state machine, articles and digests. Everything that enters tidings from outside is parsed
//! into one of these once.

mod article;
mod email;
mod lifecycle;
mod subscriber;

pub use article::{Article, ArticleSource, Digest, DigestEntry, FetchedItem, PageInfo, SourceLine};
pub use email::{EmailError, SubscriberEmail, ascii_envelope_address, parse_mailbox};
pub use lifecycle::{Refusal, Step, SubscriberEvent, SubscriberMail, Transition, transition};
pub use subscriber::{ConsentSource, DeliveryStatus, SubscriberStatus, TopicSlug};
