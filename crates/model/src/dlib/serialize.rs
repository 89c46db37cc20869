//! The primitives of dlib's binary serialization (`dlib/serialize.h`):
//! variable-length integers, floats as a mantissa/exponent pair of such
//! integers, length-prefixed strings, `'0'`/`'1'` booleans, and tensors
//! (`dlib/cuda/tensor.h`: version 2, four dimensions, raw little-endian f32).
use anyhow::{Context, Result, bail, ensure};

/// Reads dlib-serialized values from a byte slice, front to back.
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

/// A dense `num_samples x k x nr x nc` tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub dims: [usize; 4],
    pub values: Vec<f32>,
}

/// dlib's exponent markers for the special values (`float_details.h`).
const IS_INF: i64 = 32000;

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn at_end(&self) -> bool {
        self.pos == self.bytes.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.with_context(|| format!("dlib file ends at byte {} inside a value", self.bytes.len()))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// A signed integer: a control byte (bit 7 = negative, low 4 bits = the
    /// number of little-endian magnitude bytes that follow, 1 to 8).
    pub fn int(&mut self) -> Result<i64> {
        let at = self.pos;
        let control = self.take(1)?[0];
        let size = usize::from(control & 0x0F);
        ensure!((1..=8).contains(&size), "bad integer control byte {control:#04x} at byte {at}");
        let magnitude = self.take(size)?.iter().rev().fold(0u64, |v, &b| (v << 8) | u64::from(b));
        let magnitude = i64::try_from(magnitude).with_context(|| format!("integer at byte {at} overflows"))?;
        Ok(if control & 0x80 != 0 { -magnitude } else { magnitude })
    }

    /// An unsigned integer (same layout; the control byte has no sign bit).
    pub fn uint(&mut self) -> Result<u64> {
        let at = self.pos;
        let control = self.take(1)?[0];
        let size = usize::from(control & 0x8F);
        ensure!((1..=8).contains(&size), "bad unsigned integer control byte {control:#04x} at byte {at}");
        Ok(self.take(size)?.iter().rev().fold(0u64, |v, &b| (v << 8) | u64::from(b)))
    }

    /// A count or size (an unsigned integer that fits in memory).
    pub fn size(&mut self) -> Result<usize> {
        let v = self.uint()?;
        usize::try_from(v).with_context(|| format!("size {v} does not fit in memory"))
    }

    /// A float in dlib's portable form: `mantissa * 2^exponent`; infinities
    /// and NaN (exponents 32000-32002) are refused, a model has none.
    pub fn float(&mut self) -> Result<f64> {
        let at = self.pos;
        ensure!(
            self.bytes.get(self.pos).is_some_and(|b| b & 0x70 == 0),
            "float at byte {at} is in dlib's old text format, which is not supported"
        );
        let mantissa = self.int()?;
        let exponent = self.int()?;
        ensure!(exponent < IS_INF, "non-finite float at byte {at}");
        let exponent = i32::try_from(exponent).with_context(|| format!("float exponent at byte {at}"))?;
        Ok(mantissa as f64 * 2f64.powi(exponent))
    }

    pub fn string(&mut self) -> Result<String> {
        let len = self.size()?;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).context("dlib string is not UTF-8")
    }

    pub fn bool(&mut self) -> Result<bool> {
        match self.take(1)?[0] {
            b'1' => Ok(true),
            b'0' => Ok(false),
            other => bail!("bad boolean byte {other:#04x} at byte {}", self.pos - 1),
        }
    }

    /// A `resizable_tensor` (version 2).
    pub fn tensor(&mut self) -> Result<Tensor> {
        let version = self.int()?;
        ensure!(version == 2, "tensor version {version} at byte {}, expected 2", self.pos);
        let mut dims = [0usize; 4];
        for d in &mut dims {
            *d = usize::try_from(self.int()?).context("negative tensor dimension")?;
        }
        let count = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).context("tensor too large")?;
        let raw = self.take(count.checked_mul(4).context("tensor too large")?)?;
        let values = raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        Ok(Tensor { dims, values })
    }

    /// An `alias_tensor` (version 1): only a shape, a view into a layer's parameters.
    pub fn alias_shape(&mut self) -> Result<[usize; 4]> {
        let version = self.int()?;
        ensure!(version == 1, "alias tensor version {version}, expected 1");
        let mut dims = [0usize; 4];
        for d in &mut dims {
            *d = usize::try_from(self.int()?).context("negative alias tensor dimension")?;
        }
        Ok(dims)
    }

    /// Reads a string and checks it is one of `expected` (dlib's per-layer version tags).
    pub fn tag(&mut self, expected: &[&str]) -> Result<String> {
        let at = self.pos;
        let s = self.string()?;
        ensure!(expected.contains(&s.as_str()), "found {s:?} at byte {at}, expected one of {expected:?}");
        Ok(s)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// dlib's encoder for a signed integer (`pack_int`), for building test streams.
    pub fn int(v: i64) -> Vec<u8> {
        let mut m = v.unsigned_abs();
        let mut bytes = Vec::new();
        loop {
            bytes.push((m & 0xFF) as u8);
            m >>= 8;
            if m == 0 {
                break;
            }
        }
        let mut out = vec![bytes.len() as u8 | if v < 0 { 0x80 } else { 0 }];
        out.extend(bytes);
        out
    }

    pub fn string(s: &str) -> Vec<u8> {
        let mut out = int(s.len() as i64);
        out.extend(s.as_bytes());
        out
    }

    /// A float as dlib writes it: an integer mantissa and a power of two.
    pub fn float(mantissa: i64, exponent: i64) -> Vec<u8> {
        [int(mantissa), int(exponent)].concat()
    }

    pub fn tensor(dims: [i64; 4], values: &[f32]) -> Vec<u8> {
        let mut out = int(2);
        for d in dims {
            out.extend(int(d));
        }
        out.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        out
    }

    #[test]
    fn integers_are_little_endian_with_a_sign_and_length_byte() {
        // Bytes as dlib's pack_int writes them.
        let mut r = Reader::new(&[0x01, 0x00, 0x01, 0x7F, 0x82, 0x2C, 0x01, 0x02, 0xFF, 0xFF, 0x81, 0x05]);
        assert_eq!(r.int().unwrap(), 0);
        assert_eq!(r.int().unwrap(), 127);
        assert_eq!(r.int().unwrap(), -300);
        assert_eq!(r.uint().unwrap(), 65535);
        assert_eq!(r.int().unwrap(), -5);
        assert!(r.at_end());
        for v in [0i64, 1, -1, 255, 256, -65536, i64::MAX, -i64::MAX] {
            assert_eq!(Reader::new(&int(v)).int().unwrap(), v);
        }
        // A zero-length or nine-byte integer is corrupt, not a value.
        assert!(Reader::new(&[0x00]).int().is_err());
        assert!(Reader::new(&[0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0]).int().is_err());
        assert!(Reader::new(&[0x02, 0x01]).int().is_err());
    }

    #[test]
    fn floats_are_mantissa_times_a_power_of_two() {
        let bytes = [float(3, -1), float(-5, 2), float(0, 0)].concat();
        let mut r = Reader::new(&bytes);
        assert_eq!(r.float().unwrap(), 1.5);
        assert_eq!(r.float().unwrap(), -20.0);
        assert_eq!(r.float().unwrap(), 0.0);
        // Infinity and NaN markers, and the old ASCII format, are refused.
        assert!(Reader::new(&float(1, 32000)).float().is_err());
        assert!(Reader::new(b"1.5 ").float().is_err());
    }

    #[test]
    fn strings_booleans_and_tensors() {
        let bytes = [string("con_4"), b"10".to_vec(), tensor([1, 2, 1, 1], &[0.5, -2.0])].concat();
        let mut r = Reader::new(&bytes);
        assert_eq!(r.tag(&["con_4", "con_5"]).unwrap(), "con_4");
        assert!(r.bool().unwrap());
        assert!(!r.bool().unwrap());
        assert_eq!(r.tensor().unwrap(), Tensor { dims: [1, 2, 1, 1], values: vec![0.5, -2.0] });
        assert!(r.at_end());
        assert!(Reader::new(&string("relu_")).tag(&["con_4"]).is_err());
        assert!(Reader::new(b"2").bool().is_err());
        // A tensor whose data is cut short is an error, not a short tensor.
        let cut = tensor([1, 1, 1, 2], &[1.0, 2.0]);
        assert!(Reader::new(&cut[..cut.len() - 1]).tensor().is_err());
    }
}
