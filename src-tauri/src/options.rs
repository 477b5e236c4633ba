//! What the app is started with: the command line, or `VRS_TABLET_*` variables.

use std::path::PathBuf;

pub const USAGE: &str = "usage: vrs-tablet [--dir DIR] [--server URL] [--code CODE] [--replay DIR] [--hold N] \
[--fps F] [--camera] [--lang ja|en] [--window WxH] [--ca-cert PEM]";

#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// The tablet's data folder (outbox, key); the platform's app-data folder if none.
    pub dir: Option<PathBuf>,
    /// The server offered on the enrolment screen.
    pub server: Option<String>,
    /// The enrolment code offered there (a demo's), still to be sent by the user.
    pub code: Option<String>,
    /// Images replayed as the camera, in name order.
    pub replay: Option<PathBuf>,
    /// Frames each replayed image stays in view.
    pub hold: usize,
    /// Replayed frames a second.
    pub fps: f64,
    /// Use the camera even when a replay folder is given.
    pub camera: bool,
    /// The language the app starts in until the user chooses one.
    pub lang: String,
    /// The window's size in logical pixels.
    pub window: Option<(u32, u32)>,
    /// A CA certificate (PEM) to trust for the server besides the public roots.
    pub ca_cert: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            dir: None,
            server: None,
            code: None,
            replay: None,
            hold: 6,
            fps: 6.0,
            camera: false,
            lang: "ja".into(),
            window: None,
            ca_cert: None,
        }
    }
}

impl Options {
    /// From the environment first, then the arguments (which win).
    pub fn from_args(args: impl Iterator<Item = String>) -> Result<Options, String> {
        let env: Vec<(String, String)> = std::env::vars()
            .filter_map(|(k, v)| {
                let name = k.strip_prefix("VRS_TABLET_")?;
                Some((
                    format!("--{}", name.to_ascii_lowercase().replace('_', "-")),
                    v,
                ))
            })
            .collect();
        let mut o = Options::default();
        for (flag, value) in env {
            o.set(&flag, Some(value))?;
        }
        let mut args = args.peekable();
        while let Some(a) = args.next() {
            let (flag, inline) = match a.split_once('=') {
                Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
                None => (a.clone(), None),
            };
            if flag == "--camera" {
                o.camera = true;
                continue;
            }
            if !flag.starts_with("--") {
                return Err(format!("unexpected argument {a:?}"));
            }
            let value = match inline {
                Some(v) => Some(v),
                None => args.next(),
            };
            o.set(&flag, value)?;
        }
        Ok(o)
    }

    fn set(&mut self, flag: &str, value: Option<String>) -> Result<(), String> {
        let v = value.ok_or_else(|| format!("{flag} needs a value"))?;
        match flag {
            "--dir" => self.dir = Some(v.into()),
            "--server" => self.server = Some(v),
            "--code" => self.code = Some(v),
            "--replay" => self.replay = Some(v.into()),
            "--hold" => {
                self.hold = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    format!("--hold {v:?}: give a whole number of frames, 1 or more")
                })?
            }
            "--fps" => {
                self.fps = v
                    .parse()
                    .ok()
                    .filter(|f: &f64| *f > 0.0 && *f <= 60.0)
                    .ok_or_else(|| {
                        format!("--fps {v:?}: give frames a second, above 0 and at most 60")
                    })?
            }
            "--camera" => self.camera = matches!(v.as_str(), "1" | "true" | "yes"),
            "--lang" => {
                if v != "ja" && v != "en" {
                    return Err(format!("--lang {v:?}: ja or en"));
                }
                self.lang = v;
            }
            "--window" => {
                let size = v
                    .split_once('x')
                    .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
                    .filter(|(w, h): &(u32, u32)| *w >= 320 && *h >= 320);
                self.window = Some(
                    size.ok_or_else(|| format!("--window {v:?}: width x height, as 800x1280"))?,
                );
            }
            "--ca-cert" => self.ca_cert = Some(v.into()),
            _ => return Err(format!("unknown option {flag}")),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        Options::from_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn options_parse_and_bad_values_say_what_to_give() {
        let o = parse(&[
            "--replay", "/x", "--hold=3", "--window", "800x1280", "--lang", "en",
        ])
        .unwrap();
        assert_eq!(o.replay, Some(PathBuf::from("/x")));
        assert_eq!(o.hold, 3);
        assert_eq!(o.window, Some((800, 1280)));
        assert_eq!(o.lang, "en");
        assert!(parse(&["--hold", "0"]).unwrap_err().contains("1 or more"));
        assert!(
            parse(&["--window", "big"])
                .unwrap_err()
                .contains("800x1280")
        );
        assert!(parse(&["--lang", "fr"]).unwrap_err().contains("ja or en"));
        assert!(
            parse(&["--nope", "1"])
                .unwrap_err()
                .contains("unknown option")
        );
        assert!(parse(&["--dir"]).unwrap_err().contains("needs a value"));
        assert!(parse(&["--camera"]).unwrap().camera);
    }
}
