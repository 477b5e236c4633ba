//! `vrs scan` and the scanner's fixture commands: thin shells over vrs-scan.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde_json::json;
use vrs_scan::{FrameReport, Scanner};
use vrs_synth::eval::{self, EvalReport};

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("mode").args(["json", "eval", "stream"]).required(true)))]
pub struct ScanArgs {
    /// Print one JSON object per file, in order (the contract in architecture.md).
    #[arg(long, requires = "files")]
    json: bool,
    /// Score a fixture folder against its truth.json: read rate, misreads, false
    /// positives, median and p95 ms per frame.
    #[arg(long, value_name = "DIR")]
    eval: Option<PathBuf>,
    /// Replay a folder of streams (streams.json and stream-NNN/ frames) as camera
    /// frames through the multi-frame consensus.
    #[arg(long, value_name = "DIR")]
    stream: Option<PathBuf>,
    /// With --stream: agreeing frames needed to confirm a voucher.
    #[arg(long, default_value_t = vrs_scan::DEFAULT_NEED)]
    need: usize,
    /// With --stream: a voucher must be confirmed within this many frames.
    #[arg(long, default_value_t = 10)]
    window: usize,
    /// With --eval or --stream: print every image that was not right.
    #[arg(long)]
    failures: bool,
    /// Image files (PNG or JPEG) for --json.
    files: Vec<PathBuf>,
}

/// Tesseract reads OpenMP's thread limit only at process start: when it is not set,
/// run this same command again with it (one thread is ~10× faster per line).
pub fn with_one_omp_thread() -> Option<ExitCode> {
    let (name, value) = vrs_scan::ONE_THREAD_ENV;
    if std::env::var_os(name).is_some() {
        return None;
    }
    let exe = std::env::current_exe().ok()?;
    let status = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(name, value)
        .status()
        .ok()?;
    Some(ExitCode::from(
        status.code().unwrap_or(2).clamp(0, 255) as u8
    ))
}

pub fn scan(args: ScanArgs) -> Result<ExitCode> {
    if let Some(code) = with_one_omp_thread() {
        return Ok(code);
    }
    let mut scanner = Scanner::new().context("cannot start the scanner")?;
    if args.json {
        let mut out = io::stdout().lock();
        let mut failed = false;
        for f in &args.files {
            let line = match eval::load(f) {
                Ok(img) => report_json(f, &scanner.scan(&img)),
                Err(e) => {
                    failed = true;
                    json!({ "file": f.display().to_string(), "error": e.to_string() })
                }
            };
            writeln!(out, "{line}")?;
        }
        return Ok(if failed {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        });
    }
    if let Some(dir) = &args.eval {
        let report = eval::evaluate(&mut scanner, dir, |_, _| {})
            .with_context(|| format!("cannot evaluate {}", dir.display()))?;
        print_eval(dir, &report, args.failures);
        return Ok(
            if report.misreads
                + report.false_positives
                + report.label_misreads
                + report.label_false_positives
                == 0
            {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            },
        );
    }
    if let Some(dir) = &args.stream {
        let report = eval::replay_streams(&mut scanner, dir, args.need, args.window)
            .with_context(|| format!("cannot replay {}", dir.display()))?;
        println!("{}: consensus of {} frames", dir.display(), args.need);
        print!("{report}");
        if args.failures {
            for f in &report.failures {
                println!("  {f}");
            }
        }
        return Ok(if report.wrong == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    bail!("say --json FILE..., --eval DIR or --stream DIR")
}

fn print_eval(dir: &Path, report: &EvalReport, failures: bool) {
    println!("{}:", dir.display());
    print!("{report}");
    if failures {
        for f in &report.failures {
            println!("  {f}");
        }
    }
}

/// One file's line of `vrs scan --json`.
pub fn report_json(file: &Path, r: &FrameReport) -> serde_json::Value {
    let voucher = r.voucher.as_ref().map(|v| {
        json!({
            "ocr_line": v.line.to_string(),
            "kind": v.line.kind.get().to_string(),
            "dose": v.line.dose.get(),
            "municipality": v.line.municipality.to_string(),
            "number": v.line.number.to_string(),
            "source": v.source,
            "confidence": v.confidence,
        })
    });
    let lot = r.lot.as_ref().map(|l| {
        json!({
            "gtin": l.gtin.to_string(),
            "lot": l.lot.as_str(),
            "expiry": l.expiry.format("%Y-%m-%d").to_string(),
        })
    });
    json!({
        "file": file.display().to_string(),
        "voucher": voucher,
        "lot": lot,
        "symbols": r.symbols,
        "ms": (r.ms * 1000.0).round() / 1000.0,
    })
}

/// What `vrs fixtures vouchers` writes.
#[derive(Debug)]
pub struct VoucherSets {
    pub count: usize,
    pub streams: usize,
    pub frames: usize,
    pub seed: u64,
    pub sizes: Vec<(u32, u32)>,
    pub stream_sizes: Vec<(u32, u32)>,
    /// The desk set (every everyday condition as a named scene) instead of the
    /// ordinary mix.
    pub desk: bool,
}

/// "1280x720" → (1280, 720).
pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("{s:?} is not a frame size: write it as WIDTHxHEIGHT, e.g. 1280x720");
    let (w, h) = s.trim().split_once(['x', 'X']).ok_or_else(bad)?;
    Ok((w.parse().map_err(|_| bad())?, h.parse().map_err(|_| bad())?))
}

/// `vrs fixtures demo-vouchers`: the demo residents' vouchers, photographed.
pub fn fixtures_demo_vouchers(dir: &Path, skip: u64, count: u64, dose: u8) -> Result<()> {
    use vrs_domain::{DoseNumber, MunicipalityCode, OcrLine, VoucherKind, VoucherNumber};
    let municipality: MunicipalityCode = vrs_server::demo::DEMO_MUNICIPALITY.parse()?;
    let dose = DoseNumber::new(dose).context("--dose: 1 to 9")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for i in 0..count {
        let n = vrs_server::demo::DEMO_FIRST_VOUCHER + skip + i;
        let line = OcrLine {
            kind: VoucherKind::new(1).context("券種 1")?,
            dose,
            municipality,
            number: VoucherNumber::new(n).context("券番号 of 10 digits")?,
        };
        let img = vrs_synth::render_voucher(n, &line, "東京都", "千代田区")?;
        let path = dir.join(format!("{i:04}.jpg"));
        img.save(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("{}  {line}", path.display());
    }
    Ok(())
}

/// `vrs fixtures vouchers`: single photos and streams with their truth.
pub fn fixtures_vouchers(dir: &Path, sets: VoucherSets) -> Result<()> {
    use vrs_synth as synth;
    if sets.count > 0 {
        let spec = synth::SinglesSpec {
            count: sets.count,
            seed: sets.seed,
            sizes: sets.sizes,
            mix: if sets.desk {
                synth::SceneMix::desk()
            } else {
                synth::SceneMix::default()
            },
        };
        let written = synth::write_singles(dir, &spec)
            .with_context(|| format!("cannot write {}", dir.display()))?;
        eprintln!("{}: {} images and truth.json", dir.display(), written.len());
    }
    if sets.streams > 0 {
        let sdir = dir.join("streams");
        let spec = synth::StreamSpec {
            count: sets.streams,
            frames: sets.frames,
            seed: sets.seed,
            sizes: sets.stream_sizes,
            ..Default::default()
        };
        let written = synth::write_streams(&sdir, &spec)
            .with_context(|| format!("cannot write {}", sdir.display()))?;
        eprintln!(
            "{}: {} streams and streams.json",
            sdir.display(),
            written.len()
        );
    }
    Ok(())
}

/// `vrs fixtures ocrb-templates`: renders the scanner's OCR-B digit templates.
pub fn fixtures_templates(font: &Path, output: &Path) -> Result<()> {
    let bytes = std::fs::read(font).with_context(|| {
        format!(
            "cannot read {} (install fonts-ocr-b, or give --font)",
            font.display()
        )
    })?;
    let sheet = vrs_scan::render_sheet(&bytes)?;
    sheet
        .save_with_format(output, image::ImageFormat::Png)
        .with_context(|| format!("cannot write {}", output.display()))?;
    eprintln!("{}: {}x{}", output.display(), sheet.width(), sheet.height());
    Ok(())
}
