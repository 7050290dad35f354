//! The subscriber state machine, decided in one pure function.
//!
//! An address is new (no record: never seen, or erased) or its record is pending, confirmed,
//! unsubscribed, bounced or complained. [`transition`] says what each event (add, add
//! `--resubscribe`, import, web sign-up, confirm, preferences save, unsubscribe, bounce,
//! complaint) does from each of those: the status the record ends in, whether the address comes
//! off the suppression list, and which email goes out. The store carries out the decision inside
//! its transaction (deciding again on what it reads there, so a concurrent change is never
//! overwritten on a stale decision), and the CLI and the web app pick their answer and email
//! from the same decision. The unit test below is the table of every transition.

use super::SubscriberStatus;

/// Something that happens to an address. The events that look at the suppression list carry
/// what it says (`listed`: the address's hash is on it), so the state is the status alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscriberEvent {
    /// `tidings subscribers add` (or a library caller) asking for status `wants`.
    Add {
        wants: SubscriberStatus,
        listed: bool,
    },
    /// `tidings subscribers add --resubscribe`: the person asked to come back, so neither a
    /// suppressed status nor the suppression list keeps them out. `wants` is pending or
    /// confirmed.
    Resubscribe { wants: SubscriberStatus },
    /// One row of `tidings subscribers import`; `wants` is its status column (a suppressed
    /// status records an imported history). Decided exactly like [`SubscriberEvent::Add`].
    Import {
        wants: SubscriberStatus,
        listed: bool,
    },
    /// The subscribe form.
    WebSignup { listed: bool },
    /// The Confirm button behind a confirmation link.
    Confirm,
    /// Saving the preferences page, with at least one topic ticked or none.
    SavePreferences { any_topic: bool },
    /// Leaving everything: the unsubscribe link or page, the preferences page's button,
    /// `tidings subscribers remove`, or leaving the last topic.
    Unsubscribe,
    /// A permanent failure about the recipient.
    Bounce,
    /// A spam complaint.
    Complaint,
}

/// What happens to the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// A new record with this status and its consent record. A suppressed status (an imported
    /// history) puts the address on the suppression list and keeps no topics.
    Create(SubscriberStatus),
    /// The record moves to (or, for a suppressed status, enters again) this status.
    Become(SubscriberStatus),
    /// The status stays; the event's topics and time zone are written.
    Stay,
    /// Nothing is written.
    Nothing,
    /// Nothing is written: the address is suppressed. Adds and imports report it; the web app
    /// stays quiet or explains.
    Refuse(Refusal),
}

/// Why an event was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The record's status is unsubscribed, bounced or complained.
    Status,
    /// The address is on the suppression list (erased, or unsubscribed and asked to rejoin but
    /// not confirmed yet).
    Listed,
}

/// The email an event sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscriberMail {
    /// A confirmation link (double opt-in).
    Confirmation,
    /// A link to the preferences page, for an address that is already known.
    PreferencesLink,
}

/// What an event does: the step, whether the address comes off the suppression list, and the
/// email it sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    pub step: Step,
    /// Take the address off the suppression list. A confirmation takes off only an
    /// `unsubscribed` entry (a rejoining reader's); a resubscribe takes off any.
    pub unlist: bool,
    pub mail: Option<SubscriberMail>,
}

impl Transition {
    const fn of(step: Step) -> Transition {
        Transition {
            step,
            unlist: false,
            mail: None,
        }
    }

    const fn unlisting(self) -> Transition {
        Transition {
            unlist: true,
            ..self
        }
    }

    const fn mailing(self, mail: SubscriberMail) -> Transition {
        Transition {
            mail: Some(mail),
            ..self
        }
    }
}

/// What `event` does to an address whose record has `status` (`None`: no record).
pub fn transition(status: Option<SubscriberStatus>, event: SubscriberEvent) -> Transition {
    use SubscriberEvent as E;
    use SubscriberStatus as S;
    let of = Transition::of;
    match event {
        E::Add { wants, listed } | E::Import { wants, listed } => of(match status {
            None if listed => Step::Refuse(Refusal::Listed),
            None => Step::Create(wants),
            Some(s) if s.is_suppressed() => Step::Refuse(Refusal::Status),
            Some(_) if listed => Step::Refuse(Refusal::Listed),
            Some(S::Pending) if wants == S::Confirmed => Step::Become(S::Confirmed),
            Some(_) => Step::Stay,
        }),
        E::Resubscribe { wants } => of(match status {
            None => Step::Create(wants),
            Some(s) if s.is_suppressed() => Step::Become(wants),
            Some(S::Pending) if wants == S::Confirmed => Step::Become(S::Confirmed),
            Some(_) => Step::Stay,
        })
        .unlisting(),
        E::WebSignup { listed } => match status {
            None if listed => of(Step::Refuse(Refusal::Listed)),
            None => of(Step::Create(S::Pending)).mailing(SubscriberMail::Confirmation),
            Some(S::Pending) => of(Step::Nothing).mailing(SubscriberMail::Confirmation),
            Some(S::Confirmed | S::Unsubscribed) => {
                of(Step::Nothing).mailing(SubscriberMail::PreferencesLink)
            }
            Some(S::Bounced | S::Complained) => of(Step::Refuse(Refusal::Status)),
        },
        E::Confirm => match status {
            None | Some(S::Confirmed) => of(Step::Nothing),
            Some(S::Pending) => of(Step::Become(S::Confirmed)).unlisting(),
            Some(S::Unsubscribed | S::Bounced | S::Complained) => of(Step::Refuse(Refusal::Status)),
        },
        // Only a confirmation proves a reader who is not confirmed wants mail again (double
        // opt-in), so ticking topics asks for one instead of subscribing.
        E::SavePreferences { any_topic } => match (status, any_topic) {
            (None, _) | (Some(S::Unsubscribed), false) => of(Step::Nothing),
            (Some(S::Confirmed), true) => of(Step::Stay),
            (Some(S::Confirmed | S::Pending), false) => of(Step::Become(S::Unsubscribed)),
            (Some(S::Pending), true) => of(Step::Stay).mailing(SubscriberMail::Confirmation),
            (Some(S::Unsubscribed), true) => {
                of(Step::Become(S::Pending)).mailing(SubscriberMail::Confirmation)
            }
            (Some(S::Bounced | S::Complained), _) => of(Step::Refuse(Refusal::Status)),
        },
        E::Unsubscribe | E::Bounce | E::Complaint => of(match status {
            None => Step::Nothing,
            Some(_) => Step::Become(match event {
                E::Bounce => S::Bounced,
                E::Complaint => S::Complained,
                _ => S::Unsubscribed,
            }),
        }),
    }
}

impl SubscriberEvent {
    /// The event that puts a record in the suppressed `status` (unsubscribe, bounce or
    /// complaint); `None` for a status no event suppresses to.
    pub fn suppressing(status: SubscriberStatus) -> Option<SubscriberEvent> {
        match status {
            SubscriberStatus::Unsubscribed => Some(SubscriberEvent::Unsubscribe),
            SubscriberStatus::Bounced => Some(SubscriberEvent::Bounce),
            SubscriberStatus::Complained => Some(SubscriberEvent::Complaint),
            SubscriberStatus::Pending | SubscriberStatus::Confirmed => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SubscriberEvent as E;
    use SubscriberStatus::Unsubscribed as U;
    use SubscriberStatus::{Bounced as B, Complained as X, Confirmed as C, Pending as P};

    const NOTHING: Transition = Transition::of(Step::Nothing);
    const STAY: Transition = Transition::of(Step::Stay);
    /// Refused by the record's status.
    const NO_S: Transition = Transition::of(Step::Refuse(Refusal::Status));
    /// Refused by the suppression list.
    const NO_L: Transition = Transition::of(Step::Refuse(Refusal::Listed));
    const CONFIRMATION: SubscriberMail = SubscriberMail::Confirmation;
    const PREFERENCES: SubscriberMail = SubscriberMail::PreferencesLink;

    const fn create(s: SubscriberStatus) -> Transition {
        Transition::of(Step::Create(s))
    }
    const fn become_(s: SubscriberStatus) -> Transition {
        Transition::of(Step::Become(s))
    }

    /// Every event, each parameter in each of its values (a resubscribe asks for pending or
    /// confirmed). The match keeps it complete: a new event does not compile until it is
    /// listed here, and so in the table.
    fn every_event() -> Vec<SubscriberEvent> {
        let mut all = Vec::new();
        for listed in [false, true] {
            for wants in SubscriberStatus::ALL.iter().copied() {
                all.push(E::Add { wants, listed });
                all.push(E::Import { wants, listed });
            }
            all.push(E::WebSignup { listed });
        }
        for wants in [P, C] {
            all.push(E::Resubscribe { wants });
        }
        for any_topic in [false, true] {
            all.push(E::SavePreferences { any_topic });
        }
        all.extend([E::Confirm, E::Unsubscribe, E::Bounce, E::Complaint]);
        for e in &all {
            match e {
                E::Add { .. }
                | E::Resubscribe { .. }
                | E::Import { .. }
                | E::WebSignup { .. }
                | E::Confirm
                | E::SavePreferences { .. }
                | E::Unsubscribe
                | E::Bounce
                | E::Complaint => {}
            }
        }
        all
    }

    /// One row per event (an import row is decided as the add with the same parameters, which
    /// the test checks); the columns are the states new, pending, confirmed, unsubscribed,
    /// bounced, complained.
    #[rustfmt::skip]
    fn table() -> Vec<(SubscriberEvent, [Transition; 6])> {
        let add = |wants, listed| E::Add { wants, listed };
        vec![
            // A new address is created with the status asked for (a suppressed one records an
            // imported history); a pending one asked to be confirmed is confirmed; a known one
            // keeps its status and gains topics. A suppressed status, or the address on the
            // list, keeps the address out.
            (add(P, false), [create(P), STAY,       STAY, NO_S, NO_S, NO_S]),
            (add(C, false), [create(C), become_(C), STAY, NO_S, NO_S, NO_S]),
            (add(U, false), [create(U), STAY,       STAY, NO_S, NO_S, NO_S]),
            (add(B, false), [create(B), STAY,       STAY, NO_S, NO_S, NO_S]),
            (add(X, false), [create(X), STAY,       STAY, NO_S, NO_S, NO_S]),
            (add(P, true),  [NO_L,      NO_L,       NO_L, NO_S, NO_S, NO_S]),
            (add(C, true),  [NO_L,      NO_L,       NO_L, NO_S, NO_S, NO_S]),
            (add(U, true),  [NO_L,      NO_L,       NO_L, NO_S, NO_S, NO_S]),
            (add(B, true),  [NO_L,      NO_L,       NO_L, NO_S, NO_S, NO_S]),
            (add(X, true),  [NO_L,      NO_L,       NO_L, NO_S, NO_S, NO_S]),
            // --resubscribe: back to the status asked for, off the list, whatever the history.
            (E::Resubscribe { wants: P }, [create(P).unlisting(), STAY.unlisting(), STAY.unlisting(),
                                           become_(P).unlisting(), become_(P).unlisting(), become_(P).unlisting()]),
            (E::Resubscribe { wants: C }, [create(C).unlisting(), become_(C).unlisting(), STAY.unlisting(),
                                           become_(C).unlisting(), become_(C).unlisting(), become_(C).unlisting()]),
            // The subscribe form changes nothing about a known address; it only sends mail.
            (E::WebSignup { listed: false }, [create(P).mailing(CONFIRMATION), NOTHING.mailing(CONFIRMATION),
                                              NOTHING.mailing(PREFERENCES), NOTHING.mailing(PREFERENCES), NO_S, NO_S]),
            (E::WebSignup { listed: true },  [NO_L, NOTHING.mailing(CONFIRMATION),
                                              NOTHING.mailing(PREFERENCES), NOTHING.mailing(PREFERENCES), NO_S, NO_S]),
            (E::Confirm,    [NOTHING, become_(C).unlisting(), NOTHING, NO_S, NO_S, NO_S]),
            // Topics ticked: saved for a confirmed reader, a confirmation asked for otherwise.
            (E::SavePreferences { any_topic: true },
                            [NOTHING, STAY.mailing(CONFIRMATION), STAY, become_(P).mailing(CONFIRMATION), NO_S, NO_S]),
            (E::SavePreferences { any_topic: false },
                            [NOTHING, become_(U), become_(U), NOTHING, NO_S, NO_S]),
            // Whatever the status, as before: a bounced reader who unsubscribes is unsubscribed.
            (E::Unsubscribe, [NOTHING, become_(U), become_(U), become_(U), become_(U), become_(U)]),
            (E::Bounce,      [NOTHING, become_(B), become_(B), become_(B), become_(B), become_(B)]),
            (E::Complaint,   [NOTHING, become_(X), become_(X), become_(X), become_(X), become_(X)]),
        ]
    }

    #[test]
    fn every_transition_of_the_subscriber_state_machine() {
        let table = table();
        let states = [None, Some(P), Some(C), Some(U), Some(B), Some(X)];
        for event in every_event() {
            // An import row is decided as the add with the same parameters.
            let row_event = match event {
                E::Import { wants, listed } => E::Add { wants, listed },
                other => other,
            };
            let rows: Vec<_> = table.iter().filter(|(e, _)| *e == row_event).collect();
            assert_eq!(rows.len(), 1, "{event:?} must have exactly one row");
            for (status, want) in states.into_iter().zip(rows[0].1) {
                assert_eq!(
                    transition(status, event),
                    want,
                    "{event:?} from {}",
                    status.map_or("new", SubscriberStatus::as_str)
                );
            }
        }
        for (event, _) in &table {
            assert!(
                every_event().contains(event),
                "a row for a made-up event: {event:?}"
            );
        }
    }

    #[test]
    fn suppressing_events_lead_to_their_status() {
        for status in SubscriberStatus::ALL.iter().copied() {
            match SubscriberEvent::suppressing(status) {
                Some(event) => {
                    assert!(status.is_suppressed());
                    assert_eq!(transition(Some(P), event).step, Step::Become(status));
                }
                None => assert!(!status.is_suppressed()),
            }
        }
    }
}
