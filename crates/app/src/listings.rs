//! Groups looking after their own listings: who runs a service, confirming a listing is
//! still right, and the single-use links that let a group member do that, or open a
//! referral sent to their group, without a password.

use crate::App;
use crate::accounts::{AccountsError, Actor};
use kith_domain::account::{LinkPurpose, OrgKind, UserRecord};
use kith_domain::hsds::Service;
use kith_domain::referral::ReferralKind;
use kith_store::StoreError;
use uuid::Uuid;

/// The wording of the emails that carry a sign-in link.
mod wording {
    use kith_domain::account::LinkPurpose;

    pub fn listing_link(service: &str, url: &str) -> (String, String) {
        (
            format!("Check the listing for {service}"),
            format!(
                "Hello,\n\nSomeone asked Kith for a link to check the listing for {service}. If it was you, open this link within {} minutes:\n\n{url}\n\nThe link works once. If you did not ask for it, you can ignore this email.\n\nKith\n",
                LinkPurpose::UpdateListing.lifetime_minutes()
            ),
        )
    }

    pub fn referral_link(url: &str) -> (String, String) {
        (
            "Open a referral to your group".to_owned(),
            format!(
                "Hello,\n\nSomeone asked Kith for a link to open a referral to your group. If it was you, open this link within {} minutes:\n\n{url}\n\nThe link works once. If you did not ask for it, you can ignore this email.\n\nKith\n",
                LinkPurpose::AnswerReferral.lifetime_minutes()
            ),
        )
    }
}

impl App {
    /// Whether `user` is a member of the community group on Kith that runs `service`.
    pub async fn runs_service(&self, user: &UserRecord, service: &Service) -> Result<bool, StoreError> {
        let Some(runner) = service.organization_id else { return Ok(false) };
        let orgs = self.store.organisations().await?;
        Ok(user.groups().any(|group| {
            orgs.iter().any(|o| o.id == group && o.kind == OrgKind::Vcs && o.directory_id == Some(runner))
        }))
    }

    /// The directory organizations whose groups take referrals through Kith: those with
    /// a community group on Kith linked to them.
    pub async fn organizations_taking_referrals(&self) -> Result<Vec<Uuid>, StoreError> {
        let mut ids: Vec<Uuid> = self
            .store
            .organisations()
            .await?
            .into_iter()
            .filter(|o| o.kind == OrgKind::Vcs)
            .filter_map(|o| o.directory_id)
            .collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// Records that the listing was checked and is still right, by `by` ("the group", "a
    /// Kith curator"), and returns it as it now stands.
    pub async fn verify_listing(
        &self,
        service_id: Uuid,
        by: &str,
        actor: &Actor,
    ) -> Result<Option<Service>, AccountsError> {
        self.store.mark_service_verified(service_id, by).await?;
        self.accounts.audit(actor, "listing.verify", "service", Some(service_id.to_string()), by).await;
        // This instance's own change reaches its searches in a moment, not at the
        // follower's next round; the request does not wait for it.
        self.nudge_follower();
        Ok(self.store.service(service_id).await?)
    }

    /// Emails a link for checking `service`'s listing to `email`, if it belongs to a
    /// member of the group that runs it; otherwise does nothing, so the asker learns
    /// nothing about who is a member.
    pub async fn send_listing_link(&self, service: &Service, email: &str, actor: &Actor) -> Result<(), AccountsError> {
        let Some(user) = self.accounts.user_by_email(email).await? else { return Ok(()) };
        if user.disabled || !self.runs_service(&user, service).await? {
            return Ok(());
        }
        let outbox = self.outbox();
        let messages = |token: &str| {
            let (subject, body) = wording::listing_link(&service.name, &self.link_url(token));
            vec![outbox.email_message(email, &subject, &body, "magic_link")]
        };
        self.accounts.issue_magic_link(&user, LinkPurpose::UpdateListing, service.id, actor, messages).await?;
        Ok(())
    }

    /// Emails a link that opens one referral to `email`, if it belongs to a member of the
    /// group the referral was sent to; otherwise does nothing, saying nothing about the
    /// referral or who may see it.
    pub async fn send_referral_link(&self, referral_id: Uuid, email: &str, actor: &Actor) -> Result<(), AccountsError> {
        let Some(user) = self.accounts.user_by_email(email).await? else { return Ok(()) };
        let Some(referral) = self.store.referral(referral_id).await? else { return Ok(()) };
        let member = referral.group_id.is_some_and(|g| user.member_of(g));
        if !member || user.disabled || referral.kind != ReferralKind::Referral {
            return Ok(());
        }
        let outbox = self.outbox();
        let messages = |token: &str| {
            let (subject, body) = wording::referral_link(&self.link_url(token));
            vec![outbox.email_message(email, &subject, &body, "magic_link")]
        };
        self.accounts.issue_magic_link(&user, LinkPurpose::AnswerReferral, referral_id, actor, messages).await?;
        Ok(())
    }

    fn link_url(&self, token: &str) -> String {
        format!("{}/link/{token}", self.public_url)
    }
}
