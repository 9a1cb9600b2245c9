//! SHA-256 of several independent messages at once, interleaved on one core.
//!
//! Why: SHA-NI's `sha256rnds2` has a latency of several cycles and every round depends on the one
//! before, so one message keeps the SHA unit mostly idle. sha2 0.11 (the SHA-NI path, picked at
//! run time) and `openssl speed -evp sha256` both reach ~1.8 GB/s per core on this machine's
//! EPYC (Zen 4); running the rounds of 2/3/4 unrelated messages interleaved in one instruction
//! stream filled the gaps: 2.3 / 3.1 / 3.4 GB/s per core (CPU time, 64 MiB per lane, measured
//! with `CLOCK_THREAD_CPUTIME_ID`). Four lanes is the best count: six and eight measured 2.6 and
//! 2.7 GB/s (their state, 8 xmm registers a lane, no longer fits the 16 registers the
//! legacy-encoded SHA instructions can reach, and the spills cost more than the overlap gains).
//!
//! [`compress_lanes`] is the primitive (full 64-byte blocks, the same count for every lane);
//! [`LaneHasher`] streams whole files through it, keeping [`LANES`] files in flight.
//! Without SHA-NI (or off x86_64) every lane goes through sha2's own `compress256`, which is also
//! the slow twin the tests compare against.
//!
//! On an Intel Xeon (Sapphire/Emerald Rapids, the benchmark machine since) the SHA unit is the
//! limit rather than its latency: one lane 1.43 GB/s, four interleaved lanes only 1.75 GB/s per
//! core. There [`compress_wide`] runs sixteen messages in the sixteen 32-bit lanes of AVX-512
//! registers (plain SHA-256 arithmetic, `vprord` and `vpternlogd`): 2.6 GB/s per core. A
//! [`LaneHasher::wide`] keeps [`WIDE_LANES`] files in flight; each lane then moves at 1/16 of
//! that, so the walker gives it small and medium files only.

use std::fs::File;
use std::io::{ErrorKind, Read};

use super::SizedDigest;

/// Messages hashed at once by one [`LaneHasher`].
pub const LANES: usize = 4;

/// Messages hashed at once by a [`LaneHasher::wide`] (where AVX-512 is available).
pub const WIDE_LANES: usize = 16;

/// Below this many active lanes the 16-lane kernel is not used: its cost is the same whatever
/// the number of lanes it carries, and up to 10 lanes cost less through SHA-NI in groups of four
/// (per block of every lane: 4 lanes 146 ns, 1 lane 45 ns, 16 lanes 394 ns, measured).
const WIDE_MIN_ACTIVE: usize = 11;

/// Bytes read from a file per `read` call. 64 KiB measured best for the page-cache copy on this
/// machine (6.3 GB/s vs 5.9 GB/s at 256 KiB and 5.7 GB/s at 1 MiB: the lane buffers of one
/// thread, 4 x 64 KiB, stay in L2 while the SHA unit reads them back).
pub const READ_CHUNK: usize = 64 * 1024;

/// Read requests are whole multiples of this.
const PAGE: u64 = 4096;

const IV: [u32; 8] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

/// Compress `blocks[i]` into `states[i]` for every lane; every lane has the same number of blocks.
/// Up to [`LANES`] lanes; more are processed [`LANES`] at a time.
pub fn compress_lanes(states: &mut [[u32; 8]], blocks: &[&[[u8; 64]]]) {
    assert_eq!(states.len(), blocks.len(), "compress_lanes: one block slice per state");
    if let Some(first) = blocks.first() {
        assert!(blocks.iter().all(|b| b.len() == first.len()), "compress_lanes: every lane needs the same block count");
    }
    for (states, blocks) in states.chunks_mut(LANES).zip(blocks.chunks(LANES)) {
        compress_upto_lanes(states, blocks);
    }
}

fn compress_upto_lanes(states: &mut [[u32; 8]], blocks: &[&[[u8; 64]]]) {
    #[cfg(target_arch = "x86_64")]
    if states.len() > 1 && shani::available() {
        // SAFETY: the CPU has SHA-NI, SSSE3 and SSE4.1 (checked just above).
        unsafe { shani::compress_interleaved(states, blocks) };
        return;
    }
    for (state, blocks) in states.iter_mut().zip(blocks) {
        sha2::block_api::compress256(state, blocks);
    }
}

/// [`compress_lanes`] for any number of lanes, through the 16-lane AVX-512 kernel where the CPU
/// has it and enough lanes are given (missing lanes of a 16-lane group repeat the first lane's
/// blocks into a state that is thrown away).
pub fn compress_wide(states: &mut [[u32; 8]], blocks: &[&[[u8; 64]]]) {
    assert_eq!(states.len(), blocks.len(), "compress_wide: one block slice per state");
    if let Some(first) = blocks.first() {
        assert!(blocks.iter().all(|b| b.len() == first.len()), "compress_wide: every lane needs the same block count");
    }
    #[cfg(target_arch = "x86_64")]
    if wide_available() {
        for (states, blocks) in states.chunks_mut(WIDE_LANES).zip(blocks.chunks(WIDE_LANES)) {
            if states.len() < WIDE_MIN_ACTIVE {
                compress_lanes(states, blocks);
                continue;
            }
            let mut all_states = [IV; WIDE_LANES];
            all_states[..states.len()].copy_from_slice(states);
            let all_blocks: [&[[u8; 64]]; WIDE_LANES] = std::array::from_fn(|lane| blocks.get(lane).copied().unwrap_or(blocks[0]));
            // SAFETY: the CPU has AVX-512F and AVX-512BW (checked by `wide_available`); every
            // lane has the same number of blocks (asserted above).
            unsafe { avx512::compress16(&mut all_states, &all_blocks) };
            states.copy_from_slice(&all_states[..states.len()]);
        }
        return;
    }
    compress_lanes(states, blocks)
}

/// Whether [`compress_wide`] has its 16-lane kernel on this CPU (AVX-512F and AVX-512BW).
pub fn wide_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        avx512::available()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The one-lane reference: sha2's own compression function (SHA-NI or software, its choice).
pub fn compress_one(state: &mut [u32; 8], blocks: &[[u8; 64]]) {
    sha2::block_api::compress256(state, blocks);
}

#[cfg(target_arch = "x86_64")]
mod shani {
    use std::arch::x86_64::*;
    use std::sync::OnceLock;

    pub fn available() -> bool {
        static HAVE: OnceLock<bool> = OnceLock::new();
        *HAVE.get_or_init(|| {
            std::is_x86_feature_detected!("sha")
                && std::is_x86_feature_detected!("sse4.1")
                && std::is_x86_feature_detected!("ssse3")
        })
    }

    pub(super) const K32: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
        0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
        0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
        0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
        0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
        0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
        0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];

    /// The state words (a..h) as the (ABEF, CDGH) register pair `sha256rnds2` works on.
    #[inline(always)]
    unsafe fn load_state(state: &[u32; 8]) -> (__m128i, __m128i) {
        let p = state.as_ptr() as *const __m128i;
        let dcba = _mm_loadu_si128(p);
        let hgfe = _mm_loadu_si128(p.add(1));
        let cdab = _mm_shuffle_epi32(dcba, 0xB1);
        let efgh = _mm_shuffle_epi32(hgfe, 0x1B);
        (_mm_alignr_epi8(cdab, efgh, 8), _mm_blend_epi16(efgh, cdab, 0xF0))
    }

    #[inline(always)]
    unsafe fn store_state(state: &mut [u32; 8], abef: __m128i, cdgh: __m128i) {
        let feba = _mm_shuffle_epi32(abef, 0x1B);
        let dchg = _mm_shuffle_epi32(cdgh, 0xB1);
        let p = state.as_mut_ptr() as *mut __m128i;
        _mm_storeu_si128(p, _mm_blend_epi16(feba, dchg, 0xF0));
        _mm_storeu_si128(p.add(1), _mm_alignr_epi8(dchg, feba, 8));
    }

    /// A block's 16 big-endian words as four vectors.
    #[inline(always)]
    unsafe fn load_block(block: &[u8; 64]) -> [__m128i; 4] {
        let mask = _mm_set_epi64x(0x0C0D_0E0F_0809_0A0B, 0x0405_0607_0001_0203);
        let p = block.as_ptr() as *const __m128i;
        [
            _mm_shuffle_epi8(_mm_loadu_si128(p), mask),
            _mm_shuffle_epi8(_mm_loadu_si128(p.add(1)), mask),
            _mm_shuffle_epi8(_mm_loadu_si128(p.add(2)), mask),
            _mm_shuffle_epi8(_mm_loadu_si128(p.add(3)), mask),
        ]
    }

    /// N lanes, each step of the 64 rounds issued for every lane before the next step, so the
    /// lanes' independent dependency chains share the SHA unit's pipeline.
    #[inline(always)]
    // Block `b` is taken from every lane's slice in turn: an index, not one slice's iterator.
    #[allow(clippy::needless_range_loop)]
    unsafe fn compress_n<const N: usize>(states: &mut [[u32; 8]], blocks: &[&[[u8; 64]]]) {
        let mut abef = [_mm_setzero_si128(); N];
        let mut cdgh = [_mm_setzero_si128(); N];
        for lane in 0..N {
            (abef[lane], cdgh[lane]) = load_state(&states[lane]);
        }
        let count = blocks[0].len();
        for b in 0..count {
            let (abef_save, cdgh_save) = (abef, cdgh);
            let mut w = [[_mm_setzero_si128(); 4]; N];
            for lane in 0..N {
                w[lane] = load_block(&blocks[lane][b]);
            }
            for r in 0..16 {
                let i = r % 4;
                let k = _mm_loadu_si128(K32.as_ptr().add(4 * r) as *const __m128i);
                let mut t = [_mm_setzero_si128(); N];
                for lane in 0..N {
                    if r >= 4 {
                        // Message schedule: W[i] from W[i-4..i] (msg1 / alignr / msg2).
                        let wl = &mut w[lane];
                        let t1 = _mm_sha256msg1_epu32(wl[i], wl[(i + 1) % 4]);
                        let t2 = _mm_alignr_epi8(wl[(i + 3) % 4], wl[(i + 2) % 4], 4);
                        wl[i] = _mm_sha256msg2_epu32(_mm_add_epi32(t1, t2), wl[(i + 3) % 4]);
                    }
                    t[lane] = _mm_add_epi32(w[lane][i], k);
                }
                for lane in 0..N {
                    cdgh[lane] = _mm_sha256rnds2_epu32(cdgh[lane], abef[lane], t[lane]);
                }
                for lane in 0..N {
                    abef[lane] = _mm_sha256rnds2_epu32(abef[lane], cdgh[lane], _mm_shuffle_epi32(t[lane], 0x0E));
                }
            }
            for lane in 0..N {
                abef[lane] = _mm_add_epi32(abef[lane], abef_save[lane]);
                cdgh[lane] = _mm_add_epi32(cdgh[lane], cdgh_save[lane]);
            }
        }
        for lane in 0..N {
            store_state(&mut states[lane], abef[lane], cdgh[lane]);
        }
    }

    /// 2 to 4 lanes (the caller checks [`available`]).
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub unsafe fn compress_interleaved(states: &mut [[u32; 8]], blocks: &[&[[u8; 64]]]) {
        match states.len() {
            2 => compress_n::<2>(states, blocks),
            3 => compress_n::<3>(states, blocks),
            4 => compress_n::<4>(states, blocks),
            n => unreachable!("compress_interleaved takes 2 to 4 lanes, got {n}"),
        }
    }
}

/// SHA-256 of sixteen messages in the 32-bit lanes of AVX-512 registers: the textbook rounds,
/// each `Σ` three rotates and one three-way xor (`vpternlogd`), `Ch` and `Maj` one
/// `vpternlogd` each. The blocks of the sixteen lanes are loaded row by row and transposed so
/// that register `i` holds word `i` of every lane.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;
    use std::sync::OnceLock;

    use super::shani::K32;

    pub fn available() -> bool {
        static HAVE: OnceLock<bool> = OnceLock::new();
        *HAVE.get_or_init(|| std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bw"))
    }

    /// `rows[l]` (16 words of lane `l`) becomes `rows[i]` = word `i` of every lane.
    #[inline(always)]
    unsafe fn transpose(rows: &mut [__m512i; 16]) {
        let mut t = [_mm512_setzero_si512(); 16];
        for i in 0..8 {
            t[2 * i] = _mm512_unpacklo_epi32(rows[2 * i], rows[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_epi32(rows[2 * i], rows[2 * i + 1]);
        }
        // Within each 128-bit part: 4x4 blocks transposed (words 0, 2, 1, 3 of a group).
        for i in 0..4 {
            for j in 0..2 {
                rows[4 * i + j] = _mm512_unpacklo_epi64(t[4 * i + j], t[4 * i + 2 + j]);
                rows[4 * i + 2 + j] = _mm512_unpackhi_epi64(t[4 * i + j], t[4 * i + 2 + j]);
            }
        }
        // Then the 128-bit parts: a 4x4 transpose of them in two steps.
        for i in 0..2 {
            for j in 0..4 {
                t[8 * i + j] = _mm512_shuffle_i32x4(rows[8 * i + j], rows[8 * i + 4 + j], 0x88);
                t[8 * i + 4 + j] = _mm512_shuffle_i32x4(rows[8 * i + j], rows[8 * i + 4 + j], 0xDD);
            }
        }
        for j in 0..8 {
            rows[j] = _mm512_shuffle_i32x4(t[j], t[8 + j], 0x88);
            rows[8 + j] = _mm512_shuffle_i32x4(t[j], t[8 + j], 0xDD);
        }
        for q in 0..4 {
            rows.swap(4 * q + 1, 4 * q + 2);
        }
    }

    /// Compress `blocks[l]` into `states[l]` for all sixteen lanes (the same block count each).
    #[target_feature(enable = "avx512f,avx512bw")]
    // The lanes are indexed in step: an index, not one slice's iterator.
    #[allow(clippy::needless_range_loop)]
    pub unsafe fn compress16(states: &mut [[u32; 8]; 16], blocks: &[&[[u8; 64]]; 16]) {
        let mut words = [[0u32; 16]; 8];
        for (lane, state) in states.iter().enumerate() {
            for w in 0..8 {
                words[w][lane] = state[w];
            }
        }
        let mut s: [__m512i; 8] = std::array::from_fn(|w| _mm512_loadu_si512(words[w].as_ptr() as *const _));
        let bswap = _mm512_set4_epi32(0x0c0d_0e0f, 0x0809_0a0b, 0x0405_0607, 0x0001_0203);
        for b in 0..blocks[0].len() {
            let mut w: [__m512i; 16] = std::array::from_fn(|lane| _mm512_shuffle_epi8(_mm512_loadu_si512(blocks[lane][b].as_ptr() as *const _), bswap));
            transpose(&mut w);
            let [mut a, mut bb, mut c, mut d, mut e, mut f, mut g, mut h] = s;
            macro_rules! round {
                ($t:expr, $wt:expr) => {{
                    let kw = _mm512_add_epi32($wt, _mm512_set1_epi32(K32[$t] as i32));
                    let s1 = _mm512_ternarylogic_epi32(_mm512_ror_epi32(e, 6), _mm512_ror_epi32(e, 11), _mm512_ror_epi32(e, 25), 0x96);
                    let ch = _mm512_ternarylogic_epi32(e, f, g, 0xCA);
                    let t1 = _mm512_add_epi32(_mm512_add_epi32(h, s1), _mm512_add_epi32(ch, kw));
                    let s0 = _mm512_ternarylogic_epi32(_mm512_ror_epi32(a, 2), _mm512_ror_epi32(a, 13), _mm512_ror_epi32(a, 22), 0x96);
                    let maj = _mm512_ternarylogic_epi32(a, bb, c, 0xE8);
                    h = g;
                    g = f;
                    f = e;
                    e = _mm512_add_epi32(d, t1);
                    d = c;
                    c = bb;
                    bb = a;
                    a = _mm512_add_epi32(t1, _mm512_add_epi32(s0, maj));
                }};
            }
            for t in 0..16 {
                round!(t, w[t]);
            }
            for t in 16..64 {
                let w15 = w[(t - 15) & 15];
                let w2 = w[(t - 2) & 15];
                let sigma0 = _mm512_ternarylogic_epi32(_mm512_ror_epi32(w15, 7), _mm512_ror_epi32(w15, 18), _mm512_srli_epi32(w15, 3), 0x96);
                let sigma1 = _mm512_ternarylogic_epi32(_mm512_ror_epi32(w2, 17), _mm512_ror_epi32(w2, 19), _mm512_srli_epi32(w2, 10), 0x96);
                let next = _mm512_add_epi32(_mm512_add_epi32(w[t & 15], sigma0), _mm512_add_epi32(w[(t - 7) & 15], sigma1));
                w[t & 15] = next;
                round!(t, next);
            }
            for (word, v) in s.iter_mut().zip([a, bb, c, d, e, f, g, h]) {
                *word = _mm512_add_epi32(*word, v);
            }
        }
        for w in 0..8 {
            _mm512_storeu_si512(words[w].as_mut_ptr() as *mut _, s[w]);
        }
        for (lane, state) in states.iter_mut().enumerate() {
            for w in 0..8 {
                state[w] = words[w][lane];
            }
        }
    }
}

/// One file in flight: its bytes stream through `buffer`, padding included, as whole blocks.
struct Lane<T> {
    tag: T,
    file: File,
    /// The size its stat reported: the digest is of exactly these bytes, or there is none.
    size: u64,
    /// Bytes read so far.
    read: u64,
    state: [u32; 8],
    /// `buffer[start..end]` holds bytes read (or padding) not yet compressed.
    start: usize,
    end: usize,
    /// The padding is in the buffer: once it is compressed the digest is done.
    padded: bool,
    /// A short read of the file's last bytes means end of file (see
    /// [`super::short_read_is_eof`]): no read is spent to see the end.
    short_read_is_eof: bool,
    /// The end was seen that way.
    at_eof: bool,
}

/// What one file came to, with the caller's tag.
pub type LaneResult<T> = (T, std::io::Result<SizedDigest>);

/// Streams many files through [`compress_wide`], [`LANES`] (or [`WIDE_LANES`]) at a time: a lane that finishes its
/// file takes the next one at once, so files of any mix of sizes keep every lane busy. Fixed
/// memory: one [`READ_CHUNK`] buffer (plus a block of slack on each side) per lane.
pub struct LaneHasher<T> {
    lanes: Vec<Option<Lane<T>>>,
    buffers: Vec<Box<[u8]>>,
    /// Says, per file, whether a short read at its end means end of file.
    eof_hint: Option<EofHint<T>>,
}

/// See [`LaneHasher::with_eof_hint`].
pub type EofHint<T> = Box<dyn Fn(&T, &File) -> bool + Send>;

/// Room before the read area (the unconsumed tail of a block, < 64 bytes, moves there) and
/// after it (padding: up to 72 bytes).
const SLACK: usize = 128;

impl<T> Default for LaneHasher<T> {
    fn default() -> Self {
        LaneHasher::new()
    }
}

impl<T> LaneHasher<T> {
    /// [`LANES`] files in flight (SHA-NI interleaved).
    pub fn new() -> LaneHasher<T> {
        LaneHasher::with_lanes(LANES)
    }

    /// [`WIDE_LANES`] files in flight where the CPU has the 16-lane kernel
    /// ([`wide_available`]), else the same as [`new`](Self::new). More throughput per core,
    /// but each file moves at a sixteenth of it: meant for many small files.
    pub fn wide() -> LaneHasher<T> {
        LaneHasher::with_lanes(if wide_available() { WIDE_LANES } else { LANES })
    }

    /// `lanes` files in flight (any count; see [`compress_wide`] for how they are compressed).
    pub fn with_lanes(lanes: usize) -> LaneHasher<T> {
        assert!(lanes > 0, "a LaneHasher needs at least one lane");
        LaneHasher {
            lanes: (0..lanes).map(|_| None).collect(),
            buffers: (0..lanes).map(|_| vec![0u8; SLACK + READ_CHUNK + SLACK].into_boxed_slice()).collect(),
            eof_hint: None,
        }
    }

    /// How many files it keeps in flight.
    pub fn lane_count(&self) -> usize {
        self.lanes.len()
    }

    /// Trust a short read of a file's last bytes as its end when `hint(tag, file)` says so (a
    /// regular file on a disk filesystem, [`super::short_read_is_eof`]), saving the read that
    /// would return 0: one syscall per file, ~0.4 us of 5 for a small file here. Without a hint
    /// every file is read until a read returns 0.
    pub fn with_eof_hint(mut self, hint: impl Fn(&T, &File) -> bool + Send + 'static) -> Self {
        self.eof_hint = Some(Box::new(hint));
        self
    }

    /// Whether no file is in flight.
    pub fn is_idle(&self) -> bool {
        self.lanes.iter().all(Option::is_none)
    }

    /// Hash every file `next` hands out (an open file, the size its stat gave and a tag) and
    /// report each through `done`, in completion order. Like [`super::hash_open_file_sized`]: a
    /// digest covers exactly `size` bytes and the file ends there, else `Shorter` / `Longer`.
    pub fn run(&mut self, next: impl FnMut() -> Option<(T, File, u64)>, done: impl FnMut(LaneResult<T>)) {
        self.pump(next, done, true);
    }

    /// Like [`run`](Self::run), but return as soon as `next` runs dry, leaving the files still
    /// in flight in their lanes: the next `feed` (or [`finish`](Self::finish)) carries them on.
    /// The tree walker feeds each directory's small files this way, so the lanes stay full across
    /// directories instead of draining at the end of each listing (a directory of one file would
    /// otherwise be hashed on one lane, at half the speed).
    pub fn feed(&mut self, next: impl FnMut() -> Option<(T, File, u64)>, done: impl FnMut(LaneResult<T>)) {
        self.pump(next, done, false);
    }

    /// Complete every file still in flight.
    pub fn finish(&mut self, done: impl FnMut(LaneResult<T>)) {
        self.pump(|| None, done, true);
    }

    fn pump(&mut self, mut next: impl FnMut() -> Option<(T, File, u64)>, mut done: impl FnMut(LaneResult<T>), drain: bool) {
        let mut exhausted = false;
        loop {
            // Refill free lanes and bring every lane to at least one whole block (or finish it).
            for slot in 0..self.lanes.len() {
                loop {
                    if self.lanes[slot].is_none() {
                        if exhausted {
                            break;
                        }
                        match next() {
                            Some((tag, file, size)) => {
                                let short_read_is_eof = self.eof_hint.as_ref().is_some_and(|hint| hint(&tag, &file));
                                self.lanes[slot] =
                                    Some(Lane { tag, file, size, read: 0, state: IV, start: SLACK, end: SLACK, padded: false, short_read_is_eof, at_eof: false });
                            }
                            None => {
                                exhausted = true;
                                break;
                            }
                        }
                    }
                    let lane = self.lanes[slot].as_mut().expect("lane was just filled");
                    match advance(lane, &mut self.buffers[slot]) {
                        Ok(Ready::Blocks) => break,
                        Ok(Ready::Finished(result)) => {
                            let lane = self.lanes[slot].take().expect("lane is active");
                            done((lane.tag, Ok(result)));
                        }
                        Err(e) => {
                            let lane = self.lanes[slot].take().expect("lane is active");
                            done((lane.tag, Err(e)));
                        }
                    }
                }
            }
            let active: Vec<usize> = (0..self.lanes.len()).filter(|&s| self.lanes[s].is_some()).collect();
            if active.is_empty() || (exhausted && !drain) {
                return;
            }
            // As many blocks as every active lane has ready.
            let count = active
                .iter()
                .map(|&s| {
                    let lane = self.lanes[s].as_ref().expect("active");
                    (lane.end - lane.start) / 64
                })
                .min()
                .unwrap_or(0);
            debug_assert!(count > 0);
            let mut states: Vec<[u32; 8]> = active.iter().map(|&s| self.lanes[s].as_ref().expect("active").state).collect();
            {
                let blocks: Vec<&[[u8; 64]]> = active
                    .iter()
                    .map(|&s| {
                        let lane = self.lanes[s].as_ref().expect("active");
                        as_blocks(&self.buffers[s][lane.start..lane.start + 64 * count])
                    })
                    .collect();
                compress_wide(&mut states, &blocks);
            }
            for (&s, state) in active.iter().zip(states) {
                let lane = self.lanes[s].as_mut().expect("active");
                lane.state = state;
                lane.start += 64 * count;
            }
        }
    }
}

enum Ready {
    /// At least one whole block is buffered.
    Blocks,
    /// The file is done.
    Finished(SizedDigest),
}

/// Read (or pad) until the lane has a whole block to compress, or its outcome is known.
fn advance<T>(lane: &mut Lane<T>, buffer: &mut [u8]) -> std::io::Result<Ready> {
    loop {
        if lane.end - lane.start >= 64 {
            return Ok(Ready::Blocks);
        }
        if lane.padded {
            debug_assert_eq!(lane.start, lane.end);
            return Ok(Ready::Finished(SizedDigest::Digest(to_hex(&lane.state))));
        }
        // Move the partial block (< 64 bytes) in front of the read area, then read what is
        // left of the file's stat size and at least one byte more, rounded up to whole pages:
        // request sizes stay a multiple of the page size, which some pseudo files insist on
        // (pagemap answers EINVAL otherwise), and a file is never read more than one page past
        // its stat size (the contract of `scan_tree`; `/proc/PID/pagemap` reads on forever).
        let tail = lane.end - lane.start;
        buffer.copy_within(lane.start..lane.end, SLACK - tail);
        lane.start = SLACK - tail;
        lane.end = SLACK;
        let remaining = lane.size.saturating_sub(lane.read);
        let want = usize::try_from(remaining.saturating_add(1).div_ceil(PAGE) * PAGE).unwrap_or(READ_CHUNK).min(READ_CHUNK);
        let n = if lane.at_eof {
            0
        } else {
            loop {
                match lane.file.read(&mut buffer[SLACK..SLACK + want]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
        };
        if n == 0 {
            if lane.read < lane.size {
                return Ok(Ready::Finished(SizedDigest::Shorter { read: lane.read }));
            }
            // Exactly `size` bytes and then the end: append the padding (0x80, zeros, the bit
            // length) and let the lanes compress it like any other block.
            let mut end = lane.end;
            buffer[end] = 0x80;
            end += 1;
            while (end - lane.start) % 64 != 56 {
                buffer[end] = 0;
                end += 1;
            }
            buffer[end..end + 8].copy_from_slice(&(lane.size.wrapping_mul(8)).to_be_bytes());
            lane.end = end + 8;
            lane.padded = true;
            continue;
        }
        lane.read += n as u64;
        if lane.read > lane.size {
            return Ok(Ready::Finished(SizedDigest::Longer));
        }
        // `want` reaches past the stat size, so getting exactly the rest and less than asked
        // is the end of the file where short reads mean that.
        lane.at_eof = lane.short_read_is_eof && lane.read == lane.size && n < want;
        lane.end = SLACK + n;
    }
}

fn as_blocks(bytes: &[u8]) -> &[[u8; 64]] {
    debug_assert_eq!(bytes.len() % 64, 0);
    // SAFETY: [u8; 64] has alignment 1 and no padding; the length is a whole number of blocks.
    unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<[u8; 64]>(), bytes.len() / 64) }
}

fn to_hex(state: &[u32; 8]) -> String {
    let mut bytes = [0u8; 32];
    for (chunk, word) in bytes.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    super::to_hex(&bytes)
}

/// SHA-256 of whole in-memory messages, all lanes at once: the same padding and blocks as
/// [`LaneHasher`], for tests and for callers with bytes in hand.
pub fn sha256_many(messages: &[&[u8]]) -> Vec<String> {
    let padded: Vec<Vec<u8>> = messages
        .iter()
        .map(|m| {
            let mut v = m.to_vec();
            v.push(0x80);
            while v.len() % 64 != 56 {
                v.push(0);
            }
            v.extend_from_slice(&((m.len() as u64).wrapping_mul(8)).to_be_bytes());
            v
        })
        .collect();
    let mut states = vec![IV; messages.len()];
    let mut done = vec![0usize; messages.len()];
    loop {
        let active: Vec<usize> = (0..messages.len()).filter(|&i| done[i] < padded[i].len()).collect();
        if active.is_empty() {
            break;
        }
        let count = active.iter().map(|&i| (padded[i].len() - done[i]) / 64).min().unwrap_or(0);
        let mut lane_states: Vec<[u32; 8]> = active.iter().map(|&i| states[i]).collect();
        let blocks: Vec<&[[u8; 64]]> = active.iter().map(|&i| as_blocks(&padded[i][done[i]..done[i] + 64 * count])).collect();
        compress_lanes(&mut lane_states, &blocks);
        for (&i, s) in active.iter().zip(lane_states) {
            states[i] = s;
            done[i] += 64 * count;
        }
    }
    states.iter().map(to_hex).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::XorShift;
    use sha2::Digest;

    fn reference(data: &[u8]) -> String {
        super::super::to_hex(&sha2::Sha256::digest(data))
    }

    /// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
    fn bytes(seed: u64, len: usize) -> Vec<u8> {
        let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        (0..len).map(|_| rng.next_u64() as u8).collect()
    }

    /// Each lane's states after `compress_one` of its blocks: what every multi-lane kernel must give.
    fn one_lane(states: &[[u32; 8]], blocks: &[&[[u8; 64]]]) -> Vec<[u32; 8]> {
        let mut want = states.to_vec();
        for (s, b) in want.iter_mut().zip(blocks) {
            compress_one(s, b);
        }
        want
    }

    /// `compress` over 1..=`max_lanes` lanes of 1, 2, 3 and 17 blocks, from the IV and from
    /// other states, equals one lane at a time.
    fn assert_equals_one_lane(compress: fn(&mut [[u32; 8]], &[&[[u8; 64]]]), max_lanes: usize) {
        for lanes in 1..=max_lanes {
            for count in [1usize, 2, 3, 17] {
                let data: Vec<Vec<u8>> = (0..lanes).map(|l| bytes(l as u64 * 131 + count as u64, 64 * count)).collect();
                let blocks: Vec<&[[u8; 64]]> = data.iter().map(|d| as_blocks(d)).collect();
                for every in [2, 3] {
                    let mut states: Vec<[u32; 8]> =
                        (0..lanes).map(|l| if l % every == 0 { IV } else { [l as u32 * 0x0101_0101; 8] }).collect();
                    let want = one_lane(&states, &blocks);
                    compress(&mut states, &blocks);
                    assert_eq!(states, want, "{lanes} lanes, {count} blocks");
                }
            }
        }
    }

    #[test]
    fn interleaved_compression_equals_one_lane_for_every_lane_count() {
        assert_equals_one_lane(compress_lanes, 9);
    }

    #[test]
    fn wide_compression_equals_one_lane_for_every_lane_count() {
        // 1..=40 lanes: SHA-NI groups, one 16-lane group with missing lanes, several groups.
        assert_equals_one_lane(compress_wide, 40);
    }

    #[test]
    fn wide_kernel_equals_one_lane_on_adversarial_blocks() {
        // All-zero, all-one and single-bit blocks (carries through every adder), 16 lanes.
        #[cfg(target_arch = "x86_64")]
        if wide_available() {
            let patterns: Vec<[u8; 64]> = (0..16)
                .map(|l| match l % 4 {
                    0 => [0u8; 64],
                    1 => [0xff; 64],
                    2 => {
                        let mut b = [0u8; 64];
                        b[l * 4 % 64] = 0x80;
                        b
                    }
                    _ => std::array::from_fn(|i| (i * 37 + l) as u8),
                })
                .collect();
            let blocks: [&[[u8; 64]]; 16] = std::array::from_fn(|l| std::slice::from_ref(&patterns[l]));
            let mut states: [[u32; 8]; 16] = std::array::from_fn(|l| if l % 2 == 0 { [u32::MAX; 8] } else { IV });
            let want = one_lane(&states, &blocks);
            // SAFETY: AVX-512F and AVX-512BW are present (checked above).
            unsafe { avx512::compress16(&mut states, &blocks) };
            assert_eq!(states.to_vec(), want);
        }
    }

    #[test]
    fn many_messages_around_block_boundaries_equal_sha2() {
        // Lengths where the padding takes one or two blocks, and mixes of very different lengths.
        let lens = [0usize, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 1000, 4096, 65_535, 65_536, 65_537, 200_000];
        let messages: Vec<Vec<u8>> = lens.iter().enumerate().map(|(i, &n)| bytes(i as u64, n)).collect();
        let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let got = sha256_many(&refs);
        for (m, g) in messages.iter().zip(&got) {
            assert_eq!(g, &reference(m), "length {}", m.len());
        }
        assert_eq!(sha256_many(&[b"abc"]), vec!["ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".to_string()]);
    }

    #[test]
    fn a_file_longer_than_its_stat_is_read_at_most_one_page_past_it() {
        // The scan_tree contract for pseudo files (/proc/PID/pagemap: stat size 0, endless).
        let path = std::env::temp_dir().join(format!("secmon-sha256-lanes-long-{}", std::process::id()));
        std::fs::write(&path, vec![1u8; 300_000]).unwrap();
        for size in [0u64, 10, 4095, 4096, 70_000] {
            let file = File::open(&path).unwrap();
            let mut lane = Lane { tag: (), file, size, read: 0, state: IV, start: SLACK, end: SLACK, padded: false, short_read_is_eof: false, at_eof: false };
            let mut buffer = vec![0u8; SLACK + READ_CHUNK + SLACK];
            let outcome = loop {
                match advance(&mut lane, &mut buffer).unwrap() {
                    Ready::Finished(outcome) => break outcome,
                    Ready::Blocks => lane.start = lane.end - (lane.end - lane.start) % 64,
                }
            };
            assert_eq!(outcome, SizedDigest::Longer, "size {size}");
            assert!(lane.read > size && lane.read <= size + PAGE, "size {size}: read {}", lane.read);
        }
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn feeding_in_batches_then_finishing_equals_one_run() {
        // The walker feeds each directory's files and finishes once at the end: files stay in
        // flight between feeds and none is lost or reported twice.
        let dir = std::env::temp_dir().join(format!("secmon-sha256-feed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let lens = [0usize, 1, 64, 65, 70_000, 3, 200_000, 55, 56, 4096, READ_CHUNK + 1, 9, 1000];
        let mut paths = Vec::new();
        for (i, &n) in lens.iter().enumerate() {
            let path = dir.join(format!("f{i}"));
            std::fs::write(&path, bytes(i as u64 + 7, n)).unwrap();
            paths.push(path);
        }
        for (batch, lanes) in [1usize, 2, 3, 5, 13].into_iter().flat_map(|b| [(b, LANES), (b, WIDE_LANES), (b, 1), (b, 7)]) {
            let mut hasher = LaneHasher::with_lanes(lanes);
            let mut got: Vec<Option<SizedDigest>> = vec![None; lens.len()];
            let mut record = |(i, result): LaneResult<usize>| {
                assert!(got[i].is_none(), "file {i} reported twice");
                got[i] = Some(result.unwrap());
            };
            for chunk in (0..lens.len()).collect::<Vec<_>>().chunks(batch) {
                let mut queue = chunk.iter().copied();
                hasher.feed(|| queue.next().map(|i| (i, File::open(&paths[i]).unwrap(), lens[i] as u64)), &mut record);
            }
            hasher.finish(&mut record);
            assert!(hasher.is_idle());
            for (i, path) in paths.iter().enumerate() {
                let want = SizedDigest::Digest(reference(&std::fs::read(path).unwrap()));
                assert_eq!(got[i].as_ref(), Some(&want), "batch {batch}, {lanes} lanes, file {i}");
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn lane_hasher_equals_sized_single_file_hashing() {
        let dir = std::env::temp_dir().join(format!("secmon-sha256-lanes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let lens = [0usize, 3, 56, 64, 4095, 4096, READ_CHUNK - 1, READ_CHUNK, READ_CHUNK + 1, 3 * READ_CHUNK + 77, 100, 0, 9];
        let mut files = Vec::new();
        for (i, &n) in lens.iter().enumerate() {
            let path = dir.join(format!("f{i}"));
            let data = bytes(i as u64 + 100, n);
            std::fs::write(&path, &data).unwrap();
            files.push((path, data));
        }
        // Each file with its true size, one size too small (Longer) and one too large (Shorter).
        let mut jobs: Vec<(usize, u64)> = Vec::new();
        for (i, (_, data)) in files.iter().enumerate() {
            let n = data.len() as u64;
            jobs.push((i, n));
            if n > 0 {
                jobs.push((i, n - 1));
            }
            jobs.push((i, n + 5));
        }
        // Without and with the end-of-file hint (trusting short reads): the same outcomes.
        for (trust, hasher) in [false, true].into_iter().flat_map(|t| [(t, LaneHasher::new()), (t, LaneHasher::wide()), (t, LaneHasher::with_lanes(13))]) {
            let lanes = hasher.lane_count();
            let mut queue = jobs.clone().into_iter().enumerate();
            let mut got = vec![None; jobs.len()];
            hasher.with_eof_hint(move |_, _| trust).run(
                || queue.next().map(|(j, (i, size))| (j, File::open(&files[i].0).unwrap(), size)),
                |(j, result)| got[j] = Some(result.unwrap()),
            );
            for (j, &(i, size)) in jobs.iter().enumerate() {
                let want = super::super::hash_open_file_sized(&mut File::open(&files[i].0).unwrap(), super::super::Algorithm::Sha256, size).unwrap();
                assert_eq!(got[j].as_ref(), Some(&want), "file {i} ({} bytes) as size {size}, trust {trust}, {lanes} lanes", files[i].1.len());
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
