//! Just enough WebSocket (RFC 6455) for the benchmark: the handshake's accept key (SHA-1 +
//! base64, written out here to keep the crate's only dependency tokio) and frame headers.

/// The GUID every server appends to the client's key (RFC 6455 section 1.3).
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The key our clients send; any 16 bytes in base64 will do, the server never checks them.
pub const CLIENT_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (hv, v) in h.iter_mut().zip([a, b, c, d, e]) {
            *hv = hv.wrapping_add(v);
        }
    }
    let mut out = [0u8; 20];
    for (i, v) in h.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&v.to_be_bytes());
    }
    out
}

pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`.
pub fn accept_key(client_key: &str) -> String {
    let mut s = client_key.trim().as_bytes().to_vec();
    s.extend_from_slice(WS_GUID.as_bytes());
    base64(&sha1(&s))
}

/// Appends a frame header (FIN + `opcode`, payload length, optional mask key) to `out`.
pub fn push_header(out: &mut Vec<u8>, opcode_byte: u8, len: usize, mask: Option<[u8; 4]>) {
    out.push(opcode_byte);
    let mbit = if mask.is_some() { 0x80 } else { 0 };
    if len < 126 {
        out.push(mbit | len as u8);
    } else if len <= 0xFFFF {
        out.push(mbit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mbit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    if let Some(m) = mask {
        out.extend_from_slice(&m);
    }
}

/// A complete client frame: binary, FIN, masked with a fixed key (servers do not check keys).
pub fn client_frame(payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = Vec::with_capacity(payload.len() + 14);
    push_header(&mut out, 0x82, payload.len(), Some(mask));
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
    out
}

/// Length of the unmasked server frame that echoes a `len`-byte payload.
pub fn server_frame_len(len: usize) -> usize {
    len + if len < 126 {
        2
    } else if len <= 0xFFFF {
        4
    } else {
        10
    }
}

/// A parsed frame at the start of a buffer.
pub struct Frame {
    /// First byte: FIN, RSV and opcode.
    pub b0: u8,
    pub header_len: usize,
    pub payload_len: usize,
}

/// Parses the frame at the start of `buf` if it is complete, unmasking its payload in place.
pub fn parse_frame(buf: &mut [u8]) -> Option<Frame> {
    if buf.len() < 2 {
        return None;
    }
    let b0 = buf[0];
    let masked = buf[1] & 0x80 != 0;
    let (mut header_len, payload_len) = match buf[1] & 0x7f {
        126 => {
            if buf.len() < 4 {
                return None;
            }
            (4, u16::from_be_bytes([buf[2], buf[3]]) as usize)
        }
        127 => {
            if buf.len() < 10 {
                return None;
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (10, u64::from_be_bytes(b) as usize)
        }
        n => (2, n as usize),
    };
    let mut mask = [0u8; 4];
    if masked {
        if buf.len() < header_len + 4 {
            return None;
        }
        mask.copy_from_slice(&buf[header_len..header_len + 4]);
        header_len += 4;
    }
    if buf.len() < header_len + payload_len {
        return None;
    }
    if masked {
        for (i, b) in buf[header_len..header_len + payload_len]
            .iter_mut()
            .enumerate()
        {
            *b ^= mask[i & 3];
        }
    }
    Some(Frame {
        b0,
        header_len,
        payload_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_accept_example() {
        assert_eq!(accept_key(CLIENT_KEY), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn sha1_and_base64_vectors() {
        let hex: String = sha1(b"abc").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        let long = vec![b'a'; 1000];
        let hex: String = sha1(&long).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "291e9a6c66994949b57ba5e650361e98fc36b1ba");
    }

    #[test]
    fn frames_round_trip() {
        for len in [0usize, 32, 125, 126, 70000] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut f = client_frame(&payload);
            let fr = parse_frame(&mut f).unwrap();
            assert_eq!(fr.b0, 0x82);
            assert_eq!(fr.payload_len, len);
            assert_eq!(&f[fr.header_len..], &payload[..]);
            let mut s = Vec::new();
            push_header(&mut s, 0x82, len, None);
            assert_eq!(s.len() + len, server_frame_len(len));
        }
    }
}
