//! A few PostgreSQL connections to one database, handed out one at a time.

use std::sync::Mutex;

use postgres::{Client, NoTls};

use crate::error::Result;

/// A few connections to one database.
pub(super) struct PgPool {
    pub(super) url: String,
    pub(super) idle: Mutex<Vec<Client>>,
}

impl PgPool {
    pub(super) fn get(&self) -> Result<PgConn<'_>> {
        let idle = self.idle.lock().ok().and_then(|mut v| v.pop());
        let client = match idle {
            Some(c) if !c.is_closed() => c,
            _ => Client::connect(&self.url, NoTls)?,
        };
        Ok(PgConn {
            pool: self,
            client: Some(client),
        })
    }
}

pub(crate) struct PgConn<'p> {
    pool: &'p PgPool,
    client: Option<Client>,
}

impl std::ops::Deref for PgConn<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client
            .as_ref()
            .unwrap_or_else(|| unreachable!("taken only on drop"))
    }
}

impl std::ops::DerefMut for PgConn<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client
            .as_mut()
            .unwrap_or_else(|| unreachable!("taken only on drop"))
    }
}

impl Drop for PgConn<'_> {
    fn drop(&mut self) {
        if let (Some(c), Ok(mut idle)) = (self.client.take(), self.pool.idle.lock())
            && idle.len() < 8
            && !c.is_closed()
        {
            idle.push(c);
        }
    }
}
