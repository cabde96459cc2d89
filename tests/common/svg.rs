//! A ratatui buffer as an SVG picture, for the README's screenshots: one text run
//! per stretch of cells with the same style, background rectangles, a dark
//! terminal palette.

use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};

const CELL_W: f64 = 8.4;
const CELL_H: f64 = 17.0;
const FG: &str = "#d0d0d0";
const BG: &str = "#1c1c1c";

fn hex(c: Color, default: &'static str) -> String {
    let named = match c {
        Color::Reset => default,
        Color::Black => "#1c1c1c",
        Color::Red => "#d75f5f",
        Color::Green => "#87af5f",
        Color::Yellow => "#d7af5f",
        Color::Blue => "#5f87af",
        Color::Magenta => "#af87af",
        Color::Cyan => "#5fafaf",
        Color::Gray => "#a8a8a8",
        Color::DarkGray => "#6c6c6c",
        Color::LightRed => "#ff8787",
        Color::LightGreen => "#afd787",
        Color::LightYellow => "#ffd787",
        Color::LightBlue => "#87afd7",
        Color::LightMagenta => "#d7afd7",
        Color::LightCyan => "#87d7d7",
        Color::White => "#eeeeee",
        Color::Rgb(r, g, b) => return format!("#{r:02x}{g:02x}{b:02x}"),
        Color::Indexed(_) => default,
    };
    named.to_string()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn to_svg(buf: &Buffer) -> String {
    let (w, h) = (buf.area.width, buf.area.height);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0}\" height=\"{:.0}\" \
         font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\" font-size=\"14\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"{BG}\"/>\n",
        f64::from(w) * CELL_W + 16.0,
        f64::from(h) * CELL_H + 16.0
    );
    for y in 0..h {
        let mut x = 0;
        while x < w {
            let cell = &buf[(x, y)];
            let (fg, bg, m) = (cell.fg, cell.bg, cell.modifier);
            let (fg, bg) = if m.contains(Modifier::REVERSED) {
                (bg, fg)
            } else {
                (fg, bg)
            };
            let start = x;
            let mut text = String::new();
            while x < w {
                let c = &buf[(x, y)];
                if (c.fg, c.bg, c.modifier) != (cell.fg, cell.bg, cell.modifier) {
                    break;
                }
                text.push_str(c.symbol());
                x += 1;
            }
            let px = 8.0 + f64::from(start) * CELL_W;
            let py = 8.0 + f64::from(y) * CELL_H;
            if bg != Color::Reset {
                out.push_str(&format!(
                    "<rect x=\"{px:.1}\" y=\"{py:.1}\" width=\"{:.1}\" height=\"{CELL_H}\" fill=\"{}\"/>\n",
                    f64::from(x - start) * CELL_W,
                    hex(bg, BG)
                ));
            }
            if text.trim().is_empty() {
                continue;
            }
            let weight = if m.contains(Modifier::BOLD) {
                " font-weight=\"bold\""
            } else {
                ""
            };
            out.push_str(&format!(
                "<text x=\"{px:.1}\" y=\"{:.1}\" fill=\"{}\"{weight} xml:space=\"preserve\" textLength=\"{:.1}\">{}</text>\n",
                py + 13.0,
                hex(fg, FG),
                f64::from(x - start) * CELL_W,
                escape(&text)
            ));
        }
    }
    out.push_str("</svg>\n");
    out
}
