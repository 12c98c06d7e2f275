//! A `GetRankingResponse` as a server sends it: the message, or the encoding of one that a cache
//! holds, written to the wire as it is.

use prost::bytes::{Buf, BufMut, Bytes};
use prost::encoding::{DecodeContext, WireType};
use prost::{DecodeError, Message};

use crate::v1;

/// The answer of `GetRanking` on the server's side ([`crate::page_server`]). Clients decode the
/// same bytes as a [`v1::GetRankingResponse`].
#[derive(Clone, Debug, PartialEq)]
pub enum RankingPage {
    /// A message, encoded when it is sent.
    Message(Box<v1::GetRankingResponse>),
    /// The encoding of a `GetRankingResponse`, sent byte for byte. Whoever makes one vouches
    /// that the bytes are such an encoding: the server makes them with `encode_to_vec` and
    /// keeps them in its own cache.
    Encoded(Bytes),
}

impl Default for RankingPage {
    fn default() -> Self {
        RankingPage::Message(Box::default())
    }
}

impl RankingPage {
    /// The page as a message (decoding an encoded one).
    pub fn into_message(self) -> Result<v1::GetRankingResponse, DecodeError> {
        match self {
            RankingPage::Message(m) => Ok(*m),
            RankingPage::Encoded(bytes) => v1::GetRankingResponse::decode(bytes),
        }
    }
}

impl From<v1::GetRankingResponse> for RankingPage {
    fn from(m: v1::GetRankingResponse) -> Self {
        RankingPage::Message(Box::new(m))
    }
}

// A message's encoding is the concatenation of its fields, so the bytes of an encoded page are
// its `encode_raw` and their length its `encoded_len`. Decoding (which a server does not do
// with a response) merges into the message form.
impl Message for RankingPage {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        match self {
            RankingPage::Message(m) => m.encode_raw(buf),
            RankingPage::Encoded(bytes) => buf.put_slice(bytes),
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        if let RankingPage::Encoded(bytes) = self {
            *self = RankingPage::Message(Box::new(v1::GetRankingResponse::decode(bytes.clone())?));
        }
        match self {
            RankingPage::Message(m) => m.merge_field(tag, wire_type, buf, ctx),
            RankingPage::Encoded(_) => unreachable!("made a message above"),
        }
    }

    fn encoded_len(&self) -> usize {
        match self {
            RankingPage::Message(m) => m.encoded_len(),
            RankingPage::Encoded(bytes) => bytes.len(),
        }
    }

    fn clear(&mut self) {
        *self = RankingPage::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> v1::GetRankingResponse {
        v1::GetRankingResponse {
            entries: vec![
                v1::RankingEntry {
                    rank: 1,
                    score: 0.75,
                    ..Default::default()
                },
                v1::RankingEntry {
                    rank: 2,
                    score: 0.5,
                    ..Default::default()
                },
            ],
            next_page_token: "next".into(),
            ..Default::default()
        }
    }

    #[test]
    fn an_encoded_page_goes_out_as_the_message_would() {
        let message = page();
        let bytes = message.encode_to_vec();
        let encoded = RankingPage::Encoded(Bytes::from(bytes.clone()));
        assert_eq!(encoded.encoded_len(), message.encoded_len());
        assert_eq!(encoded.encode_to_vec(), bytes);
        assert_eq!(RankingPage::from(message.clone()).encode_to_vec(), bytes);
        // A client reads the same message; the page decodes into its message form.
        assert_eq!(
            v1::GetRankingResponse::decode(encoded.encode_to_vec().as_slice()).unwrap(),
            message
        );
        assert_eq!(
            RankingPage::decode(bytes.as_slice()).unwrap(),
            RankingPage::from(message.clone())
        );
        assert_eq!(encoded.clone().into_message().unwrap(), message);
        // Merging into an encoded page keeps what it held.
        let mut merged = encoded;
        merged
            .merge(
                v1::GetRankingResponse {
                    next_page_token: "later".into(),
                    ..Default::default()
                }
                .encode_to_vec()
                .as_slice(),
            )
            .unwrap();
        let mut want = message;
        want.next_page_token = "later".into();
        assert_eq!(merged, RankingPage::from(want));
    }
}
