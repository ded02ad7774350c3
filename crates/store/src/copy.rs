//! Rows in PostgreSQL's binary COPY format, for bulk loads that skip SQL parsing and per-row
//! parameter binding. Each field is encoded by sqlx's own binary encoder for its type, so the
//! bytes are exactly what a bound parameter would send.

use sqlx::postgres::{PgArgumentBuffer, Postgres};
use sqlx::Encode;

use crate::StoreError;

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

pub struct BinaryCopy {
    buf: Vec<u8>,
    fields: i16,
}

impl BinaryCopy {
    /// A COPY stream whose rows have `fields` columns.
    pub fn new(fields: i16, capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity + 32);
        buf.extend_from_slice(SIGNATURE);
        buf.extend_from_slice(&0i32.to_be_bytes()); // flags
        buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
        Self { buf, fields }
    }

    pub fn row(&mut self) -> &mut Self {
        self.buf.extend_from_slice(&self.fields.to_be_bytes());
        self
    }

    /// One field, NULL for `None`.
    pub fn field<'q, T>(&mut self, value: &T) -> Result<&mut Self, StoreError>
    where
        T: Encode<'q, Postgres> + sqlx::Type<Postgres>,
    {
        let mut arg = PgArgumentBuffer::default();
        let is_null = value
            .encode_by_ref(&mut arg)
            .map_err(|e| StoreError::Corrupt(format!("cannot encode a COPY field: {e}")))?;
        if is_null.is_null() {
            self.buf.extend_from_slice(&(-1i32).to_be_bytes());
        } else {
            let len = i32::try_from(arg.len())
                .map_err(|_| StoreError::Corrupt("COPY field over 2 GiB".into()))?;
            self.buf.extend_from_slice(&len.to_be_bytes());
            self.buf.extend_from_slice(&arg);
        }
        Ok(self)
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.buf
    }
}
