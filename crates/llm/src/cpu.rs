//! Which SIMD kernels the local models run on this CPU, chosen once per process at run
//! time, so one portable binary (baseline x86-64) is fast on every x86-64 server.
//!
//! Three levels, best first: AVX-512 (VNNI for the chat model's 8-bit dot products;
//! for the embedding model's matmuls BF16 on AMX tiles or AMD's cores, else VNNI
//! integers), AVX2 + FMA + F16C (Haswell, Zen 1 and later; AVX-VNNI where the CPU has
//! it), and scalar Rust (any CPU, any architecture). `AGENTBASE_KERNELS=scalar|avx2|avx512`
//! forces one level (tests and benchmarks compare them); a level the CPU cannot
//! run is refused with the features it lacks, never silently replaced.
//!
//! The kernels are `#[target_feature]` functions, `unsafe` to call because running
//! them on a CPU without the feature is undefined behaviour. The zero-sized tokens
//! below ([`Avx2`], [`AvxVnni`], [`Avx512Vnni`], [`Avx512Bf16`], [`Amx`]) can only be
//! made by detecting the features, so a safe wrapper that holds one has proof it may
//! call its kernel (as memchr's `arch` modules do).

use std::fmt;
use std::sync::OnceLock;

/// One kernel level; `Ord` from slowest to fastest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Plain Rust: any CPU.
    Scalar,
    /// AVX2 + FMA + F16C.
    Avx2,
    /// AVX-512: VNNI (chat) or BF16 (embeddings).
    Avx512,
}

impl Level {
    pub const ALL: [Level; 3] = [Level::Scalar, Level::Avx2, Level::Avx512];

    /// The name `AGENTBASE_KERNELS` takes.
    pub fn name(self) -> &'static str {
        match self {
            Level::Scalar => "scalar",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.name() == s)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the AVX2 embedding kernels are on this CPU: with AVX-VNNI or without.
fn embeddings_avx2() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    if AvxVnni::detect().is_some() {
        return "avx2 (AVX2+FMA, AVX-VNNI)";
    }
    "avx2 (AVX2+FMA)"
}

/// What the AVX-512 embedding kernels are on this CPU: bf16 on AMX tiles or not, or
/// integers with VNNI.
fn embeddings_avx512() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    match EmbedIsa::at(Level::Avx512) {
        Some(EmbedIsa::Avx512Int(_)) => "avx512 (AVX-512 VNNI integers)",
        _ if Amx::detect().is_some() => "avx512 (AVX-512 BF16, AMX tiles)",
        _ => "avx512 (AVX-512 BF16)",
    }
    #[cfg(not(target_arch = "x86_64"))]
    "avx512 (AVX-512 BF16)"
}

/// The kernels each local model runs in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kernels {
    /// The llama forward pass (`fast_llama`).
    pub chat: Level,
    /// The BERT forward pass (`fast_bert`).
    pub embeddings: Level,
    /// Whether `AGENTBASE_KERNELS` chose them.
    pub forced: bool,
}

impl fmt::Display for Kernels {
    /// `chat avx2 (AVX2+FMA), embeddings avx2 (AVX2+FMA)`, plus `, forced by
    /// AGENTBASE_KERNELS` when it applies.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = |level: Level, avx2: &'static str, avx512: &'static str| match level {
            Level::Scalar => "scalar",
            Level::Avx2 => avx2,
            Level::Avx512 => avx512,
        };
        write!(
            f,
            "chat {}, embeddings {}",
            what(self.chat, "avx2 (AVX2+FMA)", "avx512 (AVX-512 VNNI)"),
            what(self.embeddings, embeddings_avx2(), embeddings_avx512())
        )?;
        if self.forced {
            f.write_str(", forced by AGENTBASE_KERNELS")?;
        }
        Ok(())
    }
}

/// `AGENTBASE_KERNELS` names a level this CPU (or build) cannot run, or no level.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("AGENTBASE_KERNELS={value}: {reason}")]
pub struct KernelsError {
    pub value: String,
    pub reason: String,
}

/// The kernels the local models use in this process: the best this CPU has for each
/// model, or the level `AGENTBASE_KERNELS` forces (an error if the CPU lacks it).
/// Decided once; later changes to the variable are not seen.
pub fn kernels() -> Result<Kernels, KernelsError> {
    static CHOSEN: OnceLock<Result<Kernels, KernelsError>> = OnceLock::new();
    CHOSEN
        .get_or_init(|| choose(std::env::var("AGENTBASE_KERNELS").ok().as_deref()))
        .clone()
}

/// The fastest kernels this CPU has for each model, ignoring `AGENTBASE_KERNELS`.
pub fn best() -> Kernels {
    Kernels {
        chat: best_chat(),
        embeddings: best_embeddings(),
        forced: false,
    }
}

/// The levels both models can run here (what a test forcing each path iterates over),
/// whether or not they are the fastest.
pub fn available() -> Vec<Level> {
    Level::ALL
        .into_iter()
        .filter(|&l| missing_for(l).is_empty())
        .collect()
}

fn choose(forced: Option<&str>) -> Result<Kernels, KernelsError> {
    let value = match forced.map(str::trim) {
        None | Some("") | Some("auto") => return Ok(best()),
        Some(value) => value,
    };
    let Some(level) = Level::parse(value) else {
        return Err(KernelsError {
            value: value.to_owned(),
            reason: "expected one of auto, scalar, avx2, avx512".to_owned(),
        });
    };
    let missing = missing_for(level);
    if !missing.is_empty() {
        return Err(KernelsError {
            value: value.to_owned(),
            reason: format!("this CPU lacks {}", missing.join(", ")),
        });
    }
    Ok(Kernels {
        chat: level,
        embeddings: level,
        forced: true,
    })
}

/// CPU features (or the architecture) that `level` needs and this machine lacks.
fn missing_for(level: Level) -> Vec<&'static str> {
    #[cfg(target_arch = "x86_64")]
    {
        let want: &[&'static str] = match level {
            Level::Scalar => &[],
            Level::Avx2 => AVX2_FEATURES,
            Level::Avx512 => &[
                "avx2",
                "fma",
                "f16c",
                "avx512f",
                "avx512bw",
                "avx512dq",
                "avx512vl",
                "avx512vnni",
            ],
        };
        want.iter()
            .copied()
            .filter(|f| !x86::has(f))
            .collect::<Vec<_>>()
    }
    #[cfg(not(target_arch = "x86_64"))]
    match level {
        Level::Scalar => Vec::new(),
        _ => vec!["x86-64"],
    }
}

#[cfg(target_arch = "x86_64")]
const AVX2_FEATURES: &[&str] = &["avx2", "fma", "f16c"];

fn best_chat() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        if Avx512Vnni::detect().is_some() {
            return Level::Avx512;
        }
        if Avx2::detect().is_some() {
            return Level::Avx2;
        }
    }
    Level::Scalar
}

fn best_embeddings() -> Level {
    #[cfg(target_arch = "x86_64")]
    if EmbedIsa::at(Level::Avx512).is_some() {
        return Level::Avx512;
    }
    #[cfg(target_arch = "x86_64")]
    if Avx2::detect().is_some() {
        return Level::Avx2;
    }
    Level::Scalar
}

/// Which AVX-512 kernels the embedding model takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Avx512Embed {
    /// bf16 matmuls.
    Bf16,
    /// The AVX2 level's integer kernels on 512-bit registers (`vpdpwssd`, `vpdpbusd`).
    Int,
}

/// The AVX-512 embedding kernels for a CPU with AVX-512 BF16 (`bf16`), usable AMX
/// tiles (`amx`) and AVX-512 VNNI with BW and VL (`vnni`), from Intel or not. bf16 is
/// taken on AMX tiles, or on AMD's cores (Zen 4 and 5), which run `vdpbf16ps` at full
/// rate (Zen 5: 2.46× sentence-transformers). Intel's cores without usable tiles run it
/// at half an f32 FMA's rate, and the integer kernels are faster there: on a Sapphire
/// Rapids Xeon with `AGENTBASE_AMX=off`, 23.8 chunks/s on AVX-512 BF16 against 37.2 on
/// AVX2 with AVX-VNNI (`embed_speed`, 2026-12-07). Cascade Lake and Ice Lake have VNNI
/// and no BF16.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn avx512_embed(bf16: bool, amx: bool, vnni: bool, intel: bool) -> Option<Avx512Embed> {
    match (bf16 && (amx || !intel), vnni, bf16) {
        (true, _, _) => Some(Avx512Embed::Bf16),
        (false, true, _) => Some(Avx512Embed::Int),
        (false, false, true) => Some(Avx512Embed::Bf16),
        (false, false, false) => None,
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    /// `is_x86_feature_detected!` by name (the macro wants a literal).
    pub(super) fn has(feature: &str) -> bool {
        match feature {
            "avx2" => std::is_x86_feature_detected!("avx2"),
            "fma" => std::is_x86_feature_detected!("fma"),
            "f16c" => std::is_x86_feature_detected!("f16c"),
            "avx512f" => std::is_x86_feature_detected!("avx512f"),
            "avx512bw" => std::is_x86_feature_detected!("avx512bw"),
            "avx512dq" => std::is_x86_feature_detected!("avx512dq"),
            "avx512vl" => std::is_x86_feature_detected!("avx512vl"),
            "avx512vnni" => std::is_x86_feature_detected!("avx512vnni"),
            "avx512bf16" => std::is_x86_feature_detected!("avx512bf16"),
            _ => false,
        }
    }

    /// CPUID's vendor string is "GenuineIntel".
    pub(super) fn intel() -> bool {
        let leaf = std::arch::x86_64::__cpuid(0);
        [leaf.ebx, leaf.edx, leaf.ecx] == [0x756e_6547, 0x4965_6e69, 0x6c65_746e]
    }
}

/// Proof that this CPU has AVX2, FMA and F16C. Only [`Avx2::detect`] makes one.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Avx2(());

#[cfg(target_arch = "x86_64")]
impl Avx2 {
    pub(crate) fn detect() -> Option<Self> {
        (std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
            && std::is_x86_feature_detected!("f16c"))
        .then_some(Self(()))
    }
}

/// Proof that this CPU has what the chat model's AVX-512 kernels use, and the embedding
/// model's integer ones at that level: F, BW, DQ, VL, VNNI, plus AVX2, FMA and F16C.
/// Only [`Avx512Vnni::detect`] makes one.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Avx512Vnni(());

#[cfg(target_arch = "x86_64")]
impl Avx512Vnni {
    /// Its AVX2 + FMA + F16C part (`detect` checked those too).
    pub(crate) fn avx2(self) -> Avx2 {
        Avx2(())
    }

    pub(crate) fn detect() -> Option<Self> {
        (Avx2::detect().is_some()
            && std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512dq")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx512vnni"))
        .then_some(Self(()))
    }
}

/// Proof that this CPU has what the embedding model's AVX-512 kernels use: F and
/// BF16, plus AVX2, FMA and F16C. Only [`Avx512Bf16::detect`] makes one.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Avx512Bf16(());

#[cfg(target_arch = "x86_64")]
impl Avx512Bf16 {
    pub(crate) fn detect() -> Option<Self> {
        (Avx2::detect().is_some()
            && std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bf16"))
        .then_some(Self(()))
    }
}

/// Proof that this CPU has AVX-VNNI (the VEX-encoded, 256-bit `vpdpwssd` and
/// `vpdpbusd`: Intel since Alder Lake and Sapphire Rapids, including the Atom-core
/// Xeons without AVX-512; AMD since Zen 5) on top of AVX2. The AVX2 embedding kernels
/// fuse each integer multiply-add and its accumulation into one instruction with it.
/// `AGENTBASE_AVXVNNI=off` leaves it out (tests and benchmarks compare). Only
/// [`AvxVnni::detect`] makes one.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy)]
pub(crate) struct AvxVnni(());

#[cfg(target_arch = "x86_64")]
impl AvxVnni {
    pub(crate) fn detect() -> Option<Self> {
        let off = std::env::var("AGENTBASE_AVXVNNI").is_ok_and(|v| v == "off" || v == "0");
        (!off && Avx2::detect().is_some() && std::is_x86_feature_detected!("avxvnni"))
            .then_some(Self(()))
    }
}

/// Proof that this CPU has AMX tiles with BF16 and that Linux let this process use
/// them (`arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA)`, asked once per process; a
/// kernel without AMX support refuses). The AVX-512 embedding kernels use the tiles
/// when they can; `AGENTBASE_AMX=off` leaves them out (tests and benchmarks compare).
/// Only [`Amx::detect`] makes one.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Amx(());

#[cfg(target_arch = "x86_64")]
impl Amx {
    pub(crate) fn detect() -> Option<Self> {
        static USABLE: OnceLock<bool> = OnceLock::new();
        let off = std::env::var("AGENTBASE_AMX").is_ok_and(|v| v == "off" || v == "0");
        (!off && *USABLE.get_or_init(amx_usable)).then_some(Self(()))
    }
}

/// CPUID leaf 7 says AMX-TILE and AMX-BF16, and the kernel grants the tile data state.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[allow(unsafe_code)]
fn amx_usable() -> bool {
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    let leaf = std::arch::x86_64::__cpuid_count(7, 0);
    let (bf16, tile) = (leaf.edx & (1 << 22) != 0, leaf.edx & (1 << 24) != 0);
    // SAFETY: arch_prctl with this request only reads its integer arguments and
    // changes this process's permitted extended states.
    bf16 && tile
        && unsafe {
            libc::syscall(
                libc::SYS_arch_prctl,
                ARCH_REQ_XCOMP_PERM,
                XFEATURE_XTILEDATA,
            )
        } == 0
}

#[cfg(all(target_arch = "x86_64", not(target_os = "linux")))]
fn amx_usable() -> bool {
    false
}

/// The chat model's kernels at one level, holding the proof they may run.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ChatIsa {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2(Avx2),
    #[cfg(target_arch = "x86_64")]
    Avx512(Avx512Vnni),
}

impl ChatIsa {
    /// `None` when this CPU cannot run `level`.
    pub(crate) fn at(level: Level) -> Option<Self> {
        match level {
            Level::Scalar => Some(Self::Scalar),
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => Avx2::detect().map(Self::Avx2),
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 => Avx512Vnni::detect().map(Self::Avx512),
            #[cfg(not(target_arch = "x86_64"))]
            _ => None,
        }
    }

    pub(crate) fn level(self) -> Level {
        match self {
            Self::Scalar => Level::Scalar,
            #[cfg(target_arch = "x86_64")]
            Self::Avx2(_) => Level::Avx2,
            #[cfg(target_arch = "x86_64")]
            Self::Avx512(_) => Level::Avx512,
        }
    }
}

/// The embedding model's kernels at one level, holding the proof they may run.
#[derive(Debug, Clone, Copy)]
pub(crate) enum EmbedIsa {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2(Avx2),
    /// bf16 matmuls, on AMX tiles where they are usable.
    #[cfg(target_arch = "x86_64")]
    Avx512(Avx512Bf16),
    /// The integer kernels on 512-bit registers (see [`avx512_embed`]).
    #[cfg(target_arch = "x86_64")]
    Avx512Int(Avx512Vnni),
}

impl EmbedIsa {
    /// `None` when this CPU cannot run `level`.
    pub(crate) fn at(level: Level) -> Option<Self> {
        match level {
            Level::Scalar => Some(Self::Scalar),
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => Avx2::detect().map(Self::Avx2),
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 => {
                let (bf16, vnni) = (Avx512Bf16::detect(), Avx512Vnni::detect());
                let amx = bf16.is_some() && Amx::detect().is_some();
                match avx512_embed(bf16.is_some(), amx, vnni.is_some(), x86::intel())? {
                    Avx512Embed::Bf16 => bf16.map(Self::Avx512),
                    Avx512Embed::Int => vnni.map(Self::Avx512Int),
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => None,
        }
    }

    pub(crate) fn level(self) -> Level {
        match self {
            Self::Scalar => Level::Scalar,
            #[cfg(target_arch = "x86_64")]
            Self::Avx2(_) => Level::Avx2,
            #[cfg(target_arch = "x86_64")]
            Self::Avx512(_) | Self::Avx512Int(_) => Level::Avx512,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_variable_or_auto_picks_the_best_level() {
        assert_eq!(choose(None), Ok(best()));
        assert_eq!(choose(Some("auto")), Ok(best()));
        assert_eq!(choose(Some("")), Ok(best()));
        assert!(!best().forced);
    }

    #[test]
    fn a_forced_level_applies_to_both_models_or_is_refused_naming_what_is_missing() {
        for level in Level::ALL {
            let got = choose(Some(level.name()));
            if available().contains(&level) {
                let k = got.unwrap();
                assert_eq!((k.chat, k.embeddings, k.forced), (level, level, true));
                assert!(k.to_string().ends_with("forced by AGENTBASE_KERNELS"));
            } else {
                let e = got.unwrap_err();
                assert!(
                    e.to_string()
                        .starts_with(&format!("AGENTBASE_KERNELS={level}: this CPU lacks ")),
                    "{e}"
                );
            }
        }
        let e = choose(Some("sse9")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "AGENTBASE_KERNELS=sse9: expected one of auto, scalar, avx2, avx512"
        );
    }

    #[test]
    fn embeddings_take_avx512_bf16_on_amx_tiles_or_amd_cores_only() {
        use Avx512Embed::{Bf16, Int};
        // (BF16, AMX, VNNI, Intel): Sapphire Rapids with and without its tiles, Cooper
        // Lake, Zen 4 and 5, Cascade Lake and Ice Lake, Skylake-SP.
        assert_eq!(avx512_embed(true, true, true, true), Some(Bf16));
        assert_eq!(avx512_embed(true, false, true, true), Some(Int));
        assert_eq!(avx512_embed(true, false, true, false), Some(Bf16));
        assert_eq!(avx512_embed(false, false, true, true), Some(Int));
        assert_eq!(avx512_embed(false, false, false, true), None);
    }

    #[test]
    fn scalar_always_runs_and_tokens_exist_for_every_available_level() {
        assert!(available().contains(&Level::Scalar));
        for level in available() {
            assert_eq!(ChatIsa::at(level).map(ChatIsa::level), Some(level));
            assert_eq!(EmbedIsa::at(level).map(EmbedIsa::level), Some(level));
        }
    }

    #[test]
    fn the_report_names_each_models_kernels() {
        let k = Kernels {
            chat: Level::Avx512,
            embeddings: Level::Avx2,
            forced: false,
        };
        #[cfg(target_arch = "x86_64")]
        let vnni = AvxVnni::detect().is_some();
        #[cfg(not(target_arch = "x86_64"))]
        let vnni = false;
        let embeddings = if vnni {
            "avx2 (AVX2+FMA, AVX-VNNI)"
        } else {
            "avx2 (AVX2+FMA)"
        };
        assert_eq!(
            k.to_string(),
            format!("chat avx512 (AVX-512 VNNI), embeddings {embeddings}")
        );
    }
}
