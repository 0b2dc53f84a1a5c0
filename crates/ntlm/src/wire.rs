//! Little-endian reading and writing of NTLM structures, every read bounds-checked.

/// A cursor over untrusted bytes; reads past the end return `None` instead of panicking.
pub(crate) struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Self { input, pos: 0 }
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.input.len().saturating_sub(self.pos)
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.input.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.bytes(N)?.try_into().ok()
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|[b]| b)
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_le_bytes)
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }

    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }
}

/// A `(Len, MaxLen, BufferOffset)` triple of an NTLM message header ([MS-NLMP] §2.2.1.3).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FieldRef {
    pub(crate) len: u16,
    pub(crate) offset: u32,
}

impl FieldRef {
    pub(crate) fn read(r: &mut Reader<'_>) -> Option<Self> {
        let len = r.u16()?;
        let _max_len = r.u16()?; // informational; only Len says how much to read
        let offset = r.u32()?;
        Some(Self { len, offset })
    }

    /// The referenced bytes, or `None` when they do not lie within `message`.
    pub(crate) fn slice<'a>(&self, message: &'a [u8]) -> Option<&'a [u8]> {
        let start = usize::try_from(self.offset).ok()?;
        let end = start.checked_add(usize::from(self.len))?;
        message.get(start..end)
    }
}

/// Builds a message as a fixed header followed by a payload whose fields the header points at.
pub(crate) struct MessageWriter {
    header: Vec<u8>,
    payload: Vec<u8>,
    /// Where the payload starts: the fixed header's full size, known up front.
    header_len: usize,
}

impl MessageWriter {
    pub(crate) fn new(header_len: usize) -> Self {
        Self {
            header: Vec::with_capacity(header_len),
            payload: Vec::new(),
            header_len,
        }
    }

    pub(crate) fn put(&mut self, bytes: &[u8]) {
        self.header.extend_from_slice(bytes);
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.put(&v.to_le_bytes());
    }

    /// Appends `data` to the payload and writes its `(Len, MaxLen, Offset)` into the header.
    ///
    /// Every caller builds data from bounded configuration (names, 16-byte keys), so lengths
    /// beyond `u16` are clamped rather than reported: a clamped field would fail the peer's
    /// parse, never ours.
    pub(crate) fn field(&mut self, data: &[u8]) {
        let offset = self.header_len + self.payload.len();
        let len = u16::try_from(data.len()).unwrap_or(u16::MAX);
        self.payload
            .extend_from_slice(&data[..usize::from(len).min(data.len())]);
        self.put(&len.to_le_bytes());
        self.put(&len.to_le_bytes());
        self.u32(u32::try_from(offset).unwrap_or(u32::MAX));
    }

    pub(crate) fn finish(mut self) -> Vec<u8> {
        debug_assert_eq!(self.header.len(), self.header_len);
        self.header.append(&mut self.payload);
        self.header
    }
}

pub(crate) fn utf16le(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// UTF-16LE to `String`; `None` for an odd length or unpaired surrogates.
pub(crate) fn from_utf16le(bytes: &[u8]) -> Option<String> {
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).ok()
}

/// The "NTLMSSP\0" signature that opens every NTLM message.
pub(crate) const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";

/// The Version structure herald sends ([MS-NLMP] §2.2.2.10): 6.2 build 9200 (Windows Server
/// 2012, what Lync Server 2013 runs on), NTLMSSP_REVISION_W2K3.
pub(crate) const SERVER_VERSION: [u8; 8] = [6, 2, 0xF0, 0x23, 0, 0, 0, 0x0F];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_never_reads_past_the_end() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16(), Some(0x0201));
        assert_eq!(r.u16(), None);
        assert_eq!(r.u8(), Some(3));
        assert_eq!(r.u8(), None);
        assert_eq!(r.bytes(usize::MAX), None);
    }

    #[test]
    fn field_ref_rejects_out_of_bounds_and_overflowing_offsets() {
        let msg = [0u8; 10];
        assert!(FieldRef { len: 4, offset: 6 }.slice(&msg).is_some());
        assert!(FieldRef { len: 5, offset: 6 }.slice(&msg).is_none());
        assert!(
            FieldRef {
                len: 1,
                offset: u32::MAX
            }
            .slice(&msg)
            .is_none()
        );
    }

    #[test]
    fn utf16_rejects_odd_lengths_and_lone_surrogates() {
        assert_eq!(from_utf16le(&utf16le("Dömain")).as_deref(), Some("Dömain"));
        assert_eq!(from_utf16le(&[0x41]), None);
        assert_eq!(from_utf16le(&[0x00, 0xD8]), None);
    }
}
