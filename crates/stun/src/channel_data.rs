//! ChannelData framing (RFC 8656 §12.4) and first-byte demultiplexing (RFC 7983); borrows, never allocates.
//!
//! Channel numbers are accepted in the RFC 5766 range 0x4000–0x7FFF, not only RFC 8656's
//! 0x4000–0x4FFF: libwebrtc and coturn clients still pick numbers up to 0x7FFF.

use crate::Error;

/// Size of the ChannelData header (channel number + length).
pub const CHANNEL_DATA_HEADER_LEN: usize = 4;
/// Lowest valid channel number.
pub const MIN_CHANNEL: u16 = 0x4000;
/// Highest valid channel number (RFC 5766; RFC 8656 recommends clients stay below 0x5000).
pub const MAX_CHANNEL: u16 = 0x7FFF;

/// What the first bytes of a datagram or stream frame say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// A STUN message (first two bits 00 and, when 8 bytes are there, the magic cookie).
    Stun,
    /// A TURN ChannelData message (first byte 0x40–0x7F).
    ChannelData,
    /// Anything else (DTLS, RTP, HTTP…): not for the TURN server.
    Other,
}

/// Classifies a packet by its first bytes (RFC 7983 §7: 0–3 STUN, 64–79 ChannelData, widened
/// to 64–127 for RFC 5766 channel numbers).
pub fn classify(bytes: &[u8]) -> PacketKind {
    match bytes.first() {
        Some(0..=3) => match bytes.get(4..8) {
            Some(cookie) if cookie != crate::MAGIC_COOKIE.to_be_bytes() => PacketKind::Other,
            _ => PacketKind::Stun,
        },
        Some(0x40..=0x7f) => PacketKind::ChannelData,
        _ => PacketKind::Other,
    }
}

/// True for channel numbers 0x4000–0x7FFF.
pub fn is_valid_channel(channel: u16) -> bool {
    (MIN_CHANNEL..=MAX_CHANNEL).contains(&channel)
}

/// A ChannelData message borrowing its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelData<'a> {
    /// The channel number (0x4000–0x7FFF).
    pub channel: u16,
    /// The application data.
    pub data: &'a [u8],
}

impl<'a> ChannelData<'a> {
    /// Decodes a ChannelData message at the start of `bytes`. Trailing bytes (padding, or the
    /// next frame on a stream) are ignored; [`ChannelData::padded_len`] says how far it goes.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, Error> {
        let header = bytes
            .get(..CHANNEL_DATA_HEADER_LEN)
            .ok_or(Error::Truncated)?;
        let channel = u16::from_be_bytes([header[0], header[1]]);
        if !is_valid_channel(channel) {
            return Err(Error::InvalidChannelNumber(channel));
        }
        let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        let data = bytes
            .get(CHANNEL_DATA_HEADER_LEN..CHANNEL_DATA_HEADER_LEN + len)
            .ok_or(Error::Truncated)?;
        Ok(ChannelData { channel, data })
    }

    /// The header to put before `len` bytes of data on `channel`.
    pub fn header(channel: u16, len: usize) -> Result<[u8; 4], Error> {
        if !is_valid_channel(channel) {
            return Err(Error::InvalidChannelNumber(channel));
        }
        let len = u16::try_from(len).map_err(|_| Error::TooLarge)?;
        let c = channel.to_be_bytes();
        let l = len.to_be_bytes();
        Ok([c[0], c[1], l[0], l[1]])
    }

    /// Unpadded length on the wire (UDP).
    pub fn len(&self) -> usize {
        CHANNEL_DATA_HEADER_LEN + self.data.len()
    }

    /// True when the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Length padded to a multiple of 4, as on stream transports (RFC 8656 §12.5).
    pub fn padded_len(&self) -> usize {
        (self.len() + 3) & !3
    }

    /// Writes header, data and (if `pad`) zero padding into `out`; returns the bytes written.
    pub fn encode_into(&self, out: &mut [u8], pad: bool) -> Result<usize, Error> {
        let header = Self::header(self.channel, self.data.len())?;
        let total = if pad { self.padded_len() } else { self.len() };
        let out = out.get_mut(..total).ok_or(Error::TooLarge)?;
        let (h, rest) = out.split_at_mut(CHANNEL_DATA_HEADER_LEN);
        h.copy_from_slice(&header);
        let (d, p) = rest.split_at_mut(self.data.len());
        d.copy_from_slice(self.data);
        p.fill(0);
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8656_12_4_channel_data_roundtrip() {
        let cd = ChannelData {
            channel: 0x4001,
            data: b"abcde",
        };
        let mut buf = [0xffu8; 16];
        assert_eq!(cd.encode_into(&mut buf, true), Ok(12));
        assert_eq!(
            &buf[..12],
            &[0x40, 0x01, 0, 5, b'a', b'b', b'c', b'd', b'e', 0, 0, 0]
        );
        assert_eq!(ChannelData::decode(&buf[..12]), Ok(cd));
        assert_eq!(cd.encode_into(&mut buf, false), Ok(9));
        assert_eq!(classify(&buf), PacketKind::ChannelData);
    }

    #[test]
    fn rfc8656_12_4_rejects_bad_channel_data() {
        assert_eq!(ChannelData::decode(&[0x40, 0]), Err(Error::Truncated));
        assert_eq!(
            ChannelData::decode(&[0x40, 0, 0, 9, 1]),
            Err(Error::Truncated)
        );
        assert_eq!(
            ChannelData::decode(&[0x80, 0, 0, 0]),
            Err(Error::InvalidChannelNumber(0x8000))
        );
        assert!(ChannelData::decode(&[0x7f, 0xff, 0, 0]).is_ok());
        assert_eq!(
            ChannelData::decode(&[0x3f, 0xff, 0, 0]),
            Err(Error::InvalidChannelNumber(0x3fff))
        );
        assert!(ChannelData::header(0x4000, 70_000).is_err());
    }

    #[test]
    fn rfc7983_classifier() {
        assert_eq!(
            classify(&[0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42]),
            PacketKind::Stun
        );
        assert_eq!(classify(&[0, 1, 0, 0, 0, 0, 0, 0]), PacketKind::Other);
        assert_eq!(classify(&[0x4f, 0xff]), PacketKind::ChannelData);
        assert_eq!(classify(&[22, 254, 253]), PacketKind::Other);
        assert_eq!(classify(&[0x80, 0]), PacketKind::Other);
        // HTTP methods start with ASCII capitals 0x41-0x5A: indistinguishable from ChannelData.
        assert_eq!(classify(b"GET /"), PacketKind::ChannelData);
        assert_eq!(classify(&[0x16, 0x03, 0x01]), PacketKind::Other);
        assert_eq!(classify(&[]), PacketKind::Other);
    }
}
