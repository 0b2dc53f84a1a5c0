//! Splitting a TCP/TLS byte stream into messages (RFC 3261 §18.3) and keep-alives (RFC 5626
//! §4.4.1).

use bytes::{Buf, BytesMut};

use crate::error::ParseError;
use crate::header_name::HeaderName;
use crate::limits::Limits;
use crate::message::Message;
use crate::scan;

/// What to write back for a [`Frame::Ping`]: a single CRLF "pong" (RFC 5626 §4.4.1).
pub const KEEPALIVE_PONG: &[u8] = b"\r\n";

/// One unit cut from a stream.
#[derive(Debug)]
#[non_exhaustive]
pub enum Frame {
    /// A complete, parsed message (boxed: a message is several hundred bytes, a ping is none).
    Message(Box<Message>),
    /// A complete message (framed by its Content-Length) that failed to parse. The stream is
    /// still in sync: answer per [`ParseError::disposition`] with
    /// [`crate::Transport::Stream`] and keep reading.
    Invalid {
        /// The bytes of the message.
        bytes: bytes::Bytes,
        /// Why it failed.
        error: ParseError,
    },
    /// A double-CRLF keep-alive "ping": write [`KEEPALIVE_PONG`] back (RFC 5626 §4.4.1).
    Ping,
}

/// Cuts messages out of a byte stream. Feed it whatever the socket returned; it yields every
/// complete message (several per read, or one over many reads) and keep-alive pings, and skips
/// stray CRLFs between messages. It never buffers more than [`Limits::max_message`] bytes of an
/// unfinished message.
///
/// An `Err` from [`StreamDeframer::next_frame`] means the stream cannot be framed any more
/// (missing or malformed Content-Length, a message over the size bound): close the connection.
/// The deframer stays failed after that.
#[derive(Debug)]
pub struct StreamDeframer {
    buf: BytesMut,
    limits: Limits,
    /// How far `buf` was already searched for the end of the header section.
    searched: usize,
    /// The whole length of the current message, once its header section is known.
    need: Option<usize>,
    failed: Option<ParseError>,
    /// Searches for the CRLF CRLF that ends a header section (built once, not per read).
    finder: memchr::memmem::Finder<'static>,
}

impl StreamDeframer {
    /// A deframer enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            buf: BytesMut::new(),
            limits,
            searched: 0,
            need: None,
            failed: None,
            finder: memchr::memmem::Finder::new(b"\r\n\r\n").into_owned(),
        }
    }

    /// Appends bytes read from the connection.
    pub fn feed(&mut self, data: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(data);
        }
    }

    /// Bytes buffered but not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed, or the framing error that
    /// means the connection must be closed. Call until it returns `Ok(None)` after every
    /// [`StreamDeframer::feed`].
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ParseError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.advance() {
            Ok(f) => Ok(f),
            Err(e) => {
                self.failed = Some(e.clone());
                self.buf = BytesMut::new();
                Err(e)
            }
        }
    }

    fn advance(&mut self) -> Result<Option<Frame>, ParseError> {
        if self.need.is_none() {
            // Between messages: CRLF CRLF is a ping, a lone CRLF is ignored.
            while self.buf.starts_with(b"\r\n") {
                if self.buf.len() < 4 {
                    if self.buf[2..] == b"\r\n"[..self.buf.len() - 2] {
                        return Ok(None);
                    }
                } else if &self.buf[..4] == b"\r\n\r\n" {
                    self.buf.advance(4);
                    self.searched = 0;
                    return Ok(Some(Frame::Ping));
                }
                self.buf.advance(2);
                self.searched = 0;
            }
            if self.buf.is_empty() {
                return Ok(None);
            }
            let from = self.searched.saturating_sub(3);
            let Some(i) = self.finder.find(&self.buf[from..]) else {
                self.searched = self.buf.len();
                if self.buf.len() > self.limits.max_message {
                    return Err(ParseError::MessageTooLarge {
                        limit: self.limits.max_message,
                    });
                }
                return Ok(None);
            };
            let header_len = from + i + 4;
            let cl = content_length(&self.buf[..header_len])?;
            let total = header_len + cl;
            if total > self.limits.max_message {
                return Err(ParseError::MessageTooLarge {
                    limit: self.limits.max_message,
                });
            }
            self.need = Some(total);
        }
        let Some(total) = self.need else {
            return Ok(None);
        };
        if self.buf.len() < total {
            self.buf.reserve(total - self.buf.len());
            return Ok(None);
        }
        let bytes = self.buf.split_to(total).freeze();
        self.need = None;
        self.searched = 0;
        Ok(Some(
            match Message::parse_stream_frame(bytes.clone(), &self.limits) {
                Ok(m) => Frame::Message(Box::new(m)),
                Err(error) => Frame::Invalid { bytes, error },
            },
        ))
    }
}

/// Finds the Content-Length of a header section (lightly: the full parse re-checks it).
fn content_length(head: &[u8]) -> Result<usize, ParseError> {
    let next_line =
        |pos: usize| memchr::memchr(b'\n', &head[pos..]).map_or(head.len(), |i| pos + i + 1);
    let mut found = None;
    let mut pos = next_line(0);
    while pos < head.len() {
        let end = next_line(pos);
        let line = &head[pos..end];
        pos = end;
        // Only `Content-Length` and its compact form `l` can match; skip everything else cheaply.
        if !matches!(line.first(), Some(b'c' | b'C' | b'l' | b'L')) {
            continue;
        }
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            continue;
        };
        if !HeaderName::ContentLength.matches_str(scan::trim_lws(&line[..colon])) {
            continue;
        }
        // The value may continue on folded lines (RFC 3261 §7.3.1).
        let mut value = scan::trim_lws(&line[colon + 1..]).to_vec();
        while matches!(head.get(pos), Some(b' ' | b'\t')) {
            let end = next_line(pos);
            value.extend_from_slice(scan::trim_lws(&head[pos..end]));
            pos = end;
        }
        let n = scan::parse_u32(&value).ok_or(ParseError::InvalidHeader {
            header: "Content-Length",
        })?;
        if found.is_some() {
            return Err(ParseError::DuplicateHeader {
                header: "Content-Length",
            });
        }
        found = Some(n as usize);
    }
    found.ok_or(ParseError::MissingContentLength)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 4\r\n\r\nbody";

    fn frames(d: &mut StreamDeframer) -> Vec<Frame> {
        let mut out = Vec::new();
        while let Some(f) = d.next_frame().unwrap() {
            out.push(f);
        }
        out
    }

    #[test]
    fn several_messages_in_one_read_and_pings() {
        let mut d = StreamDeframer::new(Limits::default());
        let mut input = b"\r\n\r\n\r\n".to_vec();
        input.extend_from_slice(MSG);
        input.extend_from_slice(MSG);
        d.feed(&input);
        let f = frames(&mut d);
        assert!(matches!(f[0], Frame::Ping));
        assert_eq!(f.len(), 3);
        match &f[1] {
            Frame::Message(m) => assert_eq!(m.to_bytes(), MSG),
            other => panic!("{other:?}"),
        }
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn one_message_over_many_reads() {
        let mut d = StreamDeframer::new(Limits::default());
        for b in MSG {
            assert!(d.next_frame().unwrap().is_none());
            d.feed(&[*b]);
        }
        let f = frames(&mut d);
        assert_eq!(f.len(), 1);
        assert!(matches!(f[0], Frame::Message(_)));
    }

    #[test]
    fn ping_split_across_reads() {
        let mut d = StreamDeframer::new(Limits::default());
        d.feed(b"\r\n");
        assert!(d.next_frame().unwrap().is_none());
        d.feed(b"\r");
        assert!(d.next_frame().unwrap().is_none());
        d.feed(b"\n");
        assert!(matches!(d.next_frame().unwrap(), Some(Frame::Ping)));
    }

    #[test]
    fn missing_content_length_closes() {
        let mut d = StreamDeframer::new(Limits::default());
        d.feed(b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n");
        assert_eq!(
            d.next_frame().unwrap_err(),
            ParseError::MissingContentLength
        );
        assert!(d.next_frame().is_err());
    }

    #[test]
    fn folded_content_length() {
        let mut d = StreamDeframer::new(Limits::default());
        let msg = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nl:\r\n 2\r\n\r\nok";
        d.feed(msg);
        let f = frames(&mut d);
        assert!(matches!(&f[0], Frame::Message(m) if m.body() == &b"ok"[..]));
    }

    #[test]
    fn bounded_buffering() {
        let limits = Limits {
            max_message: 100,
            ..Limits::default()
        };
        let mut d = StreamDeframer::new(limits);
        d.feed(&[b'A'; 101]);
        assert!(matches!(
            d.next_frame(),
            Err(ParseError::MessageTooLarge { .. })
        ));
        let mut d = StreamDeframer::new(Limits {
            max_message: 100,
            ..Limits::default()
        });
        d.feed(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 1000\r\n\r\n");
        assert!(matches!(
            d.next_frame(),
            Err(ParseError::MessageTooLarge { .. })
        ));
    }

    #[test]
    fn invalid_but_framed_message_keeps_stream() {
        let mut d = StreamDeframer::new(Limits::default());
        d.feed(b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h\r\nContent-Length: 0\r\n\r\n");
        d.feed(MSG);
        let f = frames(&mut d);
        assert!(matches!(f[0], Frame::Invalid { .. }));
        assert!(matches!(f[1], Frame::Message(_)));
    }
}
