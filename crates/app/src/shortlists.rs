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
