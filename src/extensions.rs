//! The extensions a session may use, behind one type that the session drives the same way
//! whatever the build: permessage-deflate (RFC 7692) with the `deflate` feature, nothing
//! without it.
//!
//! Owns: the feature switch, so that the session's code has no `cfg` for it. Without the
//! feature, [`Extensions`] is empty and answers "no extension": RSV1 is never allowed, no
//! message is compressed or inflated.
//! Must not: read or write frames, or judge them (the session does); compress or inflate
//! anything itself (`crate::deflate` does).

#[cfg(feature = "deflate")]
pub(crate) use with_deflate::Extensions;
#[cfg(not(feature = "deflate"))]
pub(crate) use without_deflate::Extensions;

#[cfg(feature = "deflate")]
mod with_deflate {
    use alloc::boxed::Box;
    use alloc::vec::Vec;

    use crate::deflate::{Codec, DeflateConfig, Negotiated};
    use crate::error::ProtocolError;
    use crate::frame::Role;

    /// A session's extensions: permessage-deflate, when negotiated.
    #[derive(Debug)]
    pub(crate) struct Extensions {
        deflate: Option<Box<Codec>>,
    }

    impl Extensions {
        /// No extension (until the handshake negotiates one).
        pub(crate) fn none() -> Extensions {
            Extensions { deflate: None }
        }

        /// permessage-deflate with the parameters the handshake agreed on.
        pub(crate) fn deflate(
            role: Role,
            negotiated: Negotiated,
            config: &DeflateConfig,
        ) -> Extensions {
            Extensions {
                deflate: Some(Box::new(Codec::new(role, negotiated, config))),
            }
        }

        /// The permessage-deflate parameters in force, if negotiated.
        pub(crate) fn negotiated(&self) -> Option<&Negotiated> {
            self.deflate.as_deref().map(Codec::negotiated)
        }

        /// Whether RSV1 may mark a compressed message (RFC 7692 §6).
        pub(crate) fn rsv1_allowed(&self) -> bool {
            self.deflate.is_some()
        }

        /// A data message starts arriving; `compressed`: RSV1 was set on its first frame.
        pub(crate) fn start_message(&mut self, compressed: bool) {
            if let Some(codec) = self.deflate.as_mut() {
                codec.start_message(compressed);
            }
        }

        /// Whether the data message being read is compressed.
        pub(crate) fn receiving_compressed(&self) -> bool {
            self.deflate.as_ref().is_some_and(|c| c.receiving())
        }

        /// Inflate a piece of a compressed frame's payload onto `out`, unmasking it first
        /// with `mask` (key, offset into the key); 1009 past `max` inflated bytes.
        pub(crate) fn inflate(
            &mut self,
            chunk: &[u8],
            mask: Option<([u8; 4], usize)>,
            out: &mut Vec<u8>,
            max: usize,
        ) -> Result<(), ProtocolError> {
            match self.deflate.as_mut() {
                Some(codec) => codec.inflate_masked(chunk, mask, out, max),
                None => Ok(()),
            }
        }

        /// The last frame of the message arrived: if it is compressed, inflate the rest.
        pub(crate) fn end_message(
            &mut self,
            out: &mut Vec<u8>,
            max: usize,
        ) -> Result<(), ProtocolError> {
            match self.deflate.as_mut().filter(|c| c.receiving()) {
                // RFC 7692 §7.2.2: append 00 00 ff ff, inflate the rest.
                Some(codec) => codec.end_message(out, max),
                None => Ok(()),
            }
        }

        /// Drop the state of a compressed message that will never be completed.
        pub(crate) fn abandon_message(&mut self) {
            if let Some(codec) = self.deflate.as_mut().filter(|c| c.receiving()) {
                codec.abandon_message();
            }
        }

        /// `payload` compressed as a whole (RFC 7692 §6.1), or `None` when it is sent as it
        /// is (no extension, or shorter than the threshold).
        pub(crate) fn compress(&mut self, payload: &[u8]) -> Option<Vec<u8>> {
            let codec = self.deflate.as_mut()?;
            codec
                .compresses(payload.len())
                .then(|| codec.compress(payload))
        }
    }
}

#[cfg(not(feature = "deflate"))]
mod without_deflate {
    use alloc::vec::Vec;

    use crate::error::ProtocolError;

    /// A session's extensions: none in a build without the `deflate` feature.
    #[derive(Debug)]
    pub(crate) struct Extensions;

    impl Extensions {
        /// No extension.
        pub(crate) fn none() -> Extensions {
            Extensions
        }

        /// RSV1 is reserved (RFC 6455 §5.2).
        pub(crate) fn rsv1_allowed(&self) -> bool {
            false
        }

        /// No message is compressed.
        pub(crate) fn start_message(&mut self, _compressed: bool) {}

        /// No message is compressed.
        pub(crate) fn receiving_compressed(&self) -> bool {
            false
        }

        /// Never called: no message is compressed.
        pub(crate) fn inflate(
            &mut self,
            _chunk: &[u8],
            _mask: Option<([u8; 4], usize)>,
            _out: &mut Vec<u8>,
            _max: usize,
        ) -> Result<(), ProtocolError> {
            Ok(())
        }

        /// Nothing to inflate.
        pub(crate) fn end_message(
            &mut self,
            _out: &mut Vec<u8>,
            _max: usize,
        ) -> Result<(), ProtocolError> {
            Ok(())
        }

        /// Nothing to drop.
        pub(crate) fn abandon_message(&mut self) {}

        /// Every message is sent as it is.
        pub(crate) fn compress(&mut self, _payload: &[u8]) -> Option<Vec<u8>> {
            None
        }
    }
}
