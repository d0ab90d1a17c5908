//! Message boundaries on stream transports (RFC 8656 §12.5, RFC 6062 framing); does no I/O itself.

use crate::channel_data::{classify, PacketKind, CHANNEL_DATA_HEADER_LEN};
use crate::message::HEADER_LEN;
use crate::Error;

/// One frame found at the start of a stream buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// What the frame holds.
    pub kind: PacketKind,
    /// Bytes of the frame itself (STUN message, or ChannelData header + data).
    pub len: usize,
    /// Bytes to consume from the stream: `len` plus ChannelData padding.
    pub consumed: usize,
}

/// Finds the frame at the start of `buf`.
///
/// Returns `Ok(None)` when more bytes are needed, and an error when the stream does not carry
/// STUN or ChannelData (the connection should then be closed). Over streams, ChannelData is
/// padded to a multiple of four bytes (RFC 8656 §12.5); STUN messages always are.
pub fn frame(buf: &[u8]) -> Result<Option<Frame>, Error> {
    let Some(first) = buf.first() else {
        return Ok(None);
    };
    let kind = match classify(buf) {
        PacketKind::Other if *first <= 3 => return Err(Error::BadMagicCookie),
        PacketKind::Other => return Err(Error::NotStun),
        k => k,
    };
    let Some(len) = buf.get(2..4) else {
        return Ok(None);
    };
    let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
    let (len, consumed) = match kind {
        PacketKind::Stun => {
            if len & 3 != 0 {
                return Err(Error::UnalignedLength);
            }
            (HEADER_LEN + len, HEADER_LEN + len)
        }
        _ => {
            let l = CHANNEL_DATA_HEADER_LEN + len;
            (l, (l + 3) & !3)
        }
    };
    if buf.len() < consumed {
        return Ok(None);
    }
    Ok(Some(Frame {
        kind,
        len,
        consumed,
    }))
}

/// Bytes of padding a ChannelData frame of `len` bytes needs on a stream.
pub fn stream_padding(len: usize) -> usize {
    (4 - len % 4) % 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8656_12_5_channel_data_over_tcp_is_padded() {
        let buf = [0x40, 0x00, 0x00, 0x01, 0xaa, 0, 0, 0, 0x40];
        assert_eq!(
            frame(&buf),
            Ok(Some(Frame {
                kind: PacketKind::ChannelData,
                len: 5,
                consumed: 8
            }))
        );
        assert_eq!(frame(&buf[..7]), Ok(None));
        assert_eq!(frame(&buf[8..]), Ok(None));
        assert_eq!(stream_padding(5), 3);
        assert_eq!(stream_padding(8), 0);
    }

    #[test]
    fn rfc8489_6_2_2_stun_over_tcp_uses_length() {
        let mut buf = vec![0, 1, 0, 4, 0x21, 0x12, 0xa4, 0x42];
        buf.extend_from_slice(&[0; 12]);
        assert_eq!(frame(&buf), Ok(None));
        buf.extend_from_slice(&[0x80, 0x22, 0, 0]);
        assert_eq!(frame(&buf).ok().flatten().map(|f| f.consumed), Some(24));
        assert_eq!(frame(&[0x16, 3, 1, 0, 5]), Err(Error::NotStun));
    }
}
