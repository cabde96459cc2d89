//! `sockscope generate`: the man pages (clap_mangen) and the shell completions
//! (clap_complete), made from the very clap definitions the binary parses with,
//! so that they never drift from it. Written as every file sockscope writes:
//! atomically, never through a symlink, an existing file only with `--force`
//! (and only a regular one); mode 0644, as man pages and completions are read
//! by everyone. The directory is made if it is missing.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;
use clap_complete::Generator;

use crate::args::{Cli, Generate, GenerateArgs};
use crate::export::{self, OutputError, WriteOptions};
use crate::fail::Failure;

/// The mode of the files written.
const MODE: u32 = 0o644;

pub fn run(args: &GenerateArgs) -> Result<(), Failure> {
    let mut cli = Cli::command();
    cli.build();
    match &args.what {
        Generate::Man { dir } => {
            make_dir(dir)?;
            for (file, page) in man_pages(&cli)? {
                write(&dir.join(&file), args.force, &page)?;
                println!("{}", crate::escape::printable_path(&dir.join(&file)));
            }
            Ok(())
        }
        Generate::Completions { shell, dir } => {
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut cli, "sockscope", &mut script);
            match dir {
                Some(dir) => {
                    make_dir(dir)?;
                    let path = dir.join(shell.file_name("sockscope"));
                    write(&path, args.force, &script)?;
                    println!("{}", crate::escape::printable_path(&path));
                }
                None => std::io::stdout()
                    .write_all(&script)
                    .map_err(|e| Failure::Runtime(e.into()))?,
            }
            Ok(())
        }
    }
}

/// Every man page: `sockscope.1`, then `sockscope-MODE.1` for each command
/// (and `sockscope-generate-man.1` ... for theirs), with its file name.
pub fn man_pages(cli: &clap::Command) -> Result<Vec<(String, Vec<u8>)>, Failure> {
    let mut pages = Vec::new();
    add_pages(cli, &mut pages)?;
    Ok(pages)
}

fn add_pages(cmd: &clap::Command, pages: &mut Vec<(String, Vec<u8>)>) -> Result<(), Failure> {
    let man = clap_mangen::Man::new(cmd.clone());
    let mut page = Vec::new();
    man.render(&mut page)
        .map_err(|e| Failure::Runtime(anyhow::Error::new(e).context("render a man page")))?;
    pages.push((man.get_filename(), page));
    // A built command's subcommands are named `sockscope-serve` for display,
    // which is the page's name and title.
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        add_pages(sub, pages)?;
    }
    Ok(())
}

/// Creates `dir` and its parents if they are missing (a completions directory
/// often is, until a first package puts something there).
fn make_dir(dir: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(dir).map_err(|e| {
        Failure::Runtime(anyhow::Error::new(e).context(format!(
            "cannot make {}",
            crate::escape::printable_path(dir)
        )))
    })
}

fn write(path: &Path, force: bool, bytes: &[u8]) -> Result<(), Failure> {
    let options = WriteOptions {
        replace: force,
        mode: MODE,
        interrupts: None,
    };
    export::write_atomically_with(path, &options, |w| w.write_all(bytes)).map_err(|e| match e {
        OutputError::Exists(_) | OutputError::NotRegular { .. } => {
            Failure::Usage(format!("sockscope: {e}"))
        }
        other => Failure::Runtime(other.into()),
    })
}
