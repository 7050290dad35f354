//! Pure domain types with no I/O: subscriber addresses, topic slugs, statuses and the subscriber
//! state machine, articles and digests, article links and a feed's conditional-GET state.
//! Everything that enters tidings from outside is parsed into one of these once.

mod article;
mod email;
mod feed;
mod lifecycle;
mod link;
mod subscriber;

pub use article::{Article, ArticleSource, Digest, DigestEntry, FetchedItem, PageInfo, SourceLine};
pub use email::{EmailError, SubscriberEmail, ascii_envelope_address, parse_mailbox};
pub use feed::FeedState;
pub use lifecycle::{Refusal, Step, SubscriberEvent, SubscriberMail, Transition, transition};
pub use link::{WebLink, web_link};
pub use subscriber::{ConsentSource, DeliveryStatus, SubscriberStatus, TopicSlug};
