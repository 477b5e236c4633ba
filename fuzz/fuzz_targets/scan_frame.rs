//! Any small grey frame through the scanner (barcodes, line finder, templates): it
//! must not panic, and must never report a voucher, since the line reader here agrees
//! with nothing (a voucher needs both readers to agree).
#![no_main]

use image::GrayImage;
use libfuzzer_sys::fuzz_target;
use vrs_scan::Scanner;
use vrs_scan::{LineReader, Prep};

struct Silent;
impl LineReader for Silent {
    fn read_line(&mut self, _: &GrayImage, _: Prep) -> Option<String> {
        None
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let w = 1 + u32::from(data[0]) * 3;
    let h = 1 + u32::from(data[1]) * 2;
    let body = &data[2..];
    let img = GrayImage::from_fn(w, h, |x, y| image::Luma([body[((y * w + x) as usize) % body.len()]]));
    let Ok(mut scanner) = Scanner::with_reader(Silent) else {
        return;
    };
    let r = scanner.scan_gray(&img);
    assert!(r.voucher.is_none() || r.voucher.is_some_and(|v| v.source == vrs_scan::Source::Qr));
});
