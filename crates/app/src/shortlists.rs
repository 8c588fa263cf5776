//! Shortlists: the services talked about in a consultation, kept under a short code for
//! the one link a text message carries. The list itself lives in the person's browser
//! (a cookie); only a shared list is stored, and it holds service ids, nothing personal.

use crate::App;
use kith_domain::hsds::Service;
use kith_store::StoreError;
use uuid::Uuid;

impl App {
    /// The services on a list, in its order; one gone from the directory is left out.
    pub async fn shortlist_services(&self, ids: &[Uuid]) -> Result<Vec<Service>, StoreError> {
        self.services_in_order(ids).await
    }

    /// The services on a shared list, or `None` if no list has that code. The code's
    /// shape is checked first, so a malformed one costs no database read.
    pub async fn shared_list(&self, code: &str) -> Result<Option<Vec<Service>>, StoreError> {
        if !kith_crypto::token::well_formed_code(code) {
            return Ok(None);
        }
        match self.store.shared_list(code).await? {
            Some(ids) => Ok(Some(self.services_in_order(&ids).await?)),
            None => Ok(None),
        }
    }

    /// Keeps a list under a new short code and returns the code.
    pub async fn share_list(&self, ids: &[Uuid]) -> Result<String, StoreError> {
        // A clash of 50 random bits is all but impossible; one more try covers it.
        let code = kith_crypto::token::short_code();
        match self.store.put_shared_list(&code, ids, self.clock.now()).await {
            Ok(()) => Ok(code),
            Err(_) => {
                let code = kith_crypto::token::short_code();
                self.store.put_shared_list(&code, ids, self.clock.now()).await?;
                Ok(code)
            }
        }
    }
}

/// One line of what a handout says about a service, in the order the leaflet, the email
/// and the printed page give them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    /// Closed just now: said first, with no times to turn up at.
    Status,
    Where,
    When,
    Phone,
    Website,
    Email,
    Cost,
    HowToJoin,
    /// The listing has not been checked lately.
    CheckBeforeGoing,
}

impl Row {
    /// The label a person reads beside the value.
    pub fn label(self) -> &'static str {
        match self {
            Row::Status => "Status",
            Row::Where => "Where",
            Row::When => "When",
            Row::Phone => "Phone",
            Row::Website => "Website",
            Row::Email => "Email",
            Row::Cost => "Cost",
            Row::HowToJoin => "How to join",
            Row::CheckBeforeGoing => "Check before going",
        }
    }
}

/// What a handout (the leaflet, an email, a text) says about one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handout {
    pub name: String,
    pub organisation: Option<String>,
    pub summary: Option<String>,
    pub rows: Vec<(Row, String)>,
}

impl Handout {
    fn row(&self, row: Row) -> Option<&str> {
        self.rows.iter().find(|(r, _)| *r == row).map(|(_, v)| v.as_str())
    }
}

/// The shortlist as an email: each service with where, when, phone, website and cost,
/// naming the practice it came from when staff send it.
pub fn email_body(handouts: &[Handout], links: &[String], practice: Option<&str>) -> String {
    let mut out = match practice {
        Some(p) => format!("Services we talked about at {p}\n\n"),
        None => String::from("Services we talked about\n\n"),
    };
    for (h, link) in handouts.iter().zip(links) {
        out.push_str(&format!("{}\n", h.name));
        if let Some(org) = &h.organisation {
            out.push_str(&format!("{org}\n"));
        }
        for (row, value) in &h.rows {
            out.push_str(&format!("{}: {value}\n", row.label()));
        }
        out.push_str(&format!("More: {link}\n\n"));
    }
    out.push_str("Listings change: check with a service before you go.\n");
    out
}

/// The shortlist as a text message of at most two segments: who it is from, each
/// service's name and phone (as many as fit), and one short link to them all, live.
pub fn text_body(handouts: &[Handout], link: &str, practice: Option<&str>) -> String {
    let head = match practice {
        Some(p) => format!("{p}: services we talked about:"),
        None => String::from("Services we talked about:"),
    };
    let lines: Vec<String> = handouts
        .iter()
        .enumerate()
        .map(|(n, h)| {
            let phone = h.row(Row::Phone).map(|v| format!(" {v}")).unwrap_or_default();
            let closed = if h.row(Row::Status).is_some() { " (closed just now)" } else { "" };
            format!("{}. {}{closed}{phone}", n + 1, h.name)
        })
        .collect();
    kith_domain::sms::fit(&head, &lines, &format!("Details: {link}"), 60, 2)
}

/// Lists one address (or /64) may send in [`crate::accounts::WINDOW_MINUTES`] without
/// signing in, so the form cannot mail strangers in bulk.
pub const SENDS_PER_ADDRESS: u32 = 5;
/// Lists one signed-in person may send in the window: a busy desk, not a mailing list.
pub const SENDS_PER_PERSON: u32 = 30;
/// Lists one email address or mobile may be sent in the window, whoever sends them.
pub const SENDS_PER_RECIPIENT: u32 = 3;

/// Where a shortlist goes, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendTo {
    Email(String),
    /// A UK mobile number, as the texter takes it.
    Text(String),
}

/// A field of the send form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendField {
    How,
    To,
}

impl SendField {
    /// The form field's name, which is also its element id.
    pub fn name(self) -> &'static str {
        match self {
            SendField::How => "how",
            SendField::To => "to",
        }
    }
}

impl SendTo {
    /// The form's choice (`email` or `text`) and address, checked. `texts` says whether
    /// this person may send a text: signed-in staff only, since a text costs the
    /// practice money and cannot be refused by the recipient.
    pub fn parse(how: &str, to: &str, texts: bool) -> Result<SendTo, (SendField, &'static str)> {
        use kith_domain::contact::{plausible_email, uk_mobile};
        match how {
            "email" if plausible_email(to) => Ok(SendTo::Email(to.trim().to_owned())),
            "email" => Err((SendField::To, "Enter an email address in the correct format, like name@example.org")),
            "text" if !texts => Err((SendField::How, "Sign in to send a text message, or send the list by email")),
            "text" => {
                uk_mobile(to).map(SendTo::Text).ok_or((SendField::To, "Enter a UK mobile number, like 07700 900123"))
            }
            _ => Err((SendField::How, "Choose email or text message")),
        }
    }

    fn address(&self) -> &str {
        match self {
            SendTo::Email(a) | SendTo::Text(a) => a,
        }
    }
}

/// Who is sending a shortlist, for the limits and for the name at the top.
#[derive(Debug, Clone, Copy)]
pub enum Sender<'a> {
    /// Signed in: counted as a person, and the message names their practice.
    Member(&'a kith_domain::account::UserRecord),
    /// Not signed in: counted by the address the request came from.
    Anyone { ip: Option<&'a str> },
}

/// A shortlist to send.
#[derive(Debug, Clone)]
pub struct SendShortlist<'a> {
    pub ids: &'a [Uuid],
    pub to: SendTo,
    pub sender: Sender<'a>,
    /// Who the audit entry names.
    pub actor: &'a crate::Actor,
}

#[derive(Debug, thiserror::Error)]
pub enum ShortlistError {
    #[error(
        "This address has been sent several lists already. Wait {} minutes, or print the list instead.",
        crate::accounts::WINDOW_MINUTES
    )]
    TooManyToThisAddress,
    #[error(
        "Several lists have been sent from here already. Wait {} minutes, or print the list instead.",
        crate::accounts::WINDOW_MINUTES
    )]
    TooManyFromHere,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl App {
    /// Sends a shortlist by email or text, within the limits on who sends and who
    /// receives. `describe` says what the handout says about each service (the same as
    /// the printed page). The message and its audit entry, which says a list went but
    /// not where, are written together or not at all. Returns the address, masked.
    pub async fn send_shortlist(
        &self,
        send: SendShortlist<'_>,
        describe: impl Fn(&Service) -> Handout,
    ) -> Result<String, ShortlistError> {
        let address = send.to.address();
        // The recipient is counted by a keyed digest: the limit table never holds the address.
        let recipient =
            format!("send-to:{}", self.accounts.keyring().blind_index("recipient", &address.to_lowercase()));
        let (sender, limit) = match send.sender {
            Sender::Member(user) => (format!("send-by:{}", user.id), SENDS_PER_PERSON),
            Sender::Anyone { ip } => {
                let from = ip.map_or_else(|| "unknown".to_owned(), crate::accounts::limit_address);
                (format!("send:{from}"), SENDS_PER_ADDRESS)
            }
        };
        // A limit that cannot be read refuses: it is there to stop misuse.
        if !self.accounts.allow_attempt(&recipient, SENDS_PER_RECIPIENT).await.unwrap_or(false) {
            return Err(ShortlistError::TooManyToThisAddress);
        }
        if !self.accounts.allow_attempt(&sender, limit).await.unwrap_or(false) {
            return Err(ShortlistError::TooManyFromHere);
        }
        let found = self.services_in_order(send.ids).await?;
        let handouts: Vec<Handout> = found.iter().map(describe).collect();
        // The practice that sent it, so the person knows who it is from.
        let practice = match send.sender {
            Sender::Member(user) => match user.practices().next() {
                Some(id) => self.store.organisation(id).await?.map(|o| o.name),
                None => None,
            },
            Sender::Anyone { .. } => None,
        };
        let outbox = self.outbox();
        let (message, what) = match &send.to {
            SendTo::Email(to) => {
                let links: Vec<String> =
                    found.iter().map(|s| format!("{}/services/{}", self.public_url, s.id)).collect();
                let body = email_body(&handouts, &links, practice.as_deref());
                (outbox.email_message(to, "Services we talked about", &body, "shortlist"), "email")
            }
            SendTo::Text(to) => {
                let code = self.share_list(send.ids).await?;
                let link = format!("{}/l/{code}", self.public_url);
                (
                    outbox.text_message(to, &text_body(&handouts, &link, practice.as_deref()), "shortlist"),
                    "text message",
                )
            }
        };
        let audit =
            self.accounts.audit_event(send.actor, "shortlist.send", "outbox", Some(message.id.to_string()), what);
        outbox.queue_audited(message, audit).await?;
        Ok(kith_domain::contact::masked(address))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handout(name: &str, rows: Vec<(Row, &str)>) -> Handout {
        Handout {
            name: name.into(),
            organisation: Some("Parkhead Community Trust".into()),
            summary: None,
            rows: rows.into_iter().map(|(r, v)| (r, v.to_owned())).collect(),
        }
    }

    #[test]
    fn an_email_gives_each_row_with_its_label_and_a_link() {
        let h = [handout("Lunch club", vec![(Row::Where, "Parkhead Library"), (Row::HowToJoin, "Just turn up")])];
        let body = email_body(&h, &["https://kith.example/services/1".into()], Some("Parkhead Surgery"));
        assert!(
            body.starts_with("Services we talked about at Parkhead Surgery\n\nLunch club\nParkhead Community Trust\n")
        );
        assert!(
            body.contains(
                "Where: Parkhead Library\nHow to join: Just turn up\nMore: https://kith.example/services/1\n"
            )
        );
        assert!(body.ends_with("Listings change: check with a service before you go.\n"));
    }

    #[test]
    fn a_text_gives_names_phones_and_closures_and_one_link() {
        let h = [
            handout("Lunch club", vec![(Row::Phone, "0141 000 0000")]),
            handout("Walking group", vec![(Row::Status, "Closed for the summer")]),
        ];
        let body = text_body(&h, "https://kith.example/l/abc", None);
        assert!(body.starts_with("Services we talked about:"), "{body}");
        assert!(body.contains("1. Lunch club 0141 000 0000"), "{body}");
        assert!(body.contains("2. Walking group (closed just now)"), "{body}");
        assert!(body.ends_with("Details: https://kith.example/l/abc"), "{body}");
    }

    #[test]
    fn the_send_form_is_checked_field_by_field() {
        assert_eq!(SendTo::parse("email", " a@example.org ", false), Ok(SendTo::Email("a@example.org".into())));
        assert_eq!(SendTo::parse("email", "nope", true).map_err(|e| e.0), Err(SendField::To));
        assert_eq!(SendTo::parse("text", "07700 900123", false).map_err(|e| e.0), Err(SendField::How));
        assert!(matches!(SendTo::parse("text", "07700 900123", true), Ok(SendTo::Text(_))));
        assert_eq!(SendTo::parse("text", "12", true).map_err(|e| e.0), Err(SendField::To));
        assert_eq!(SendTo::parse("pigeon", "x", true).map_err(|e| e.0), Err(SendField::How));
    }
}
