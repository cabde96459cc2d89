use std::os::unix::fs::{MetadataExt, symlink};
use std::path::Path;

use super::*;
use crate::sample::netns::discover::Namespaces;

const ID: &str = "3f4e5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081";
const UID: &str = "1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d";

/// A fixture process in namespace `inode` with a cgroup file, a name and a
/// hostname file (none when `hostname` is `None`).
fn process(root: &Path, pid: u32, inode: u64, cgroup: &str, comm: &str, hostname: Option<&[u8]>) {
    let dir = root.join(pid.to_string());
    std::fs::create_dir_all(dir.join("ns")).expect("mkdir");
    symlink(format!("net:[{inode}]"), dir.join("ns/net")).expect("symlink");
    std::fs::write(dir.join("cgroup"), cgroup).expect("cgroup");
    std::fs::write(dir.join("comm"), format!("{comm}\n")).expect("comm");
    if let Some(h) = hostname {
        std::fs::create_dir_all(dir.join("root/etc")).expect("mkdir");
        std::fs::write(dir.join("root/etc/hostname"), h).expect("hostname");
    }
}

/// The labels of a fixture tree, by namespace inode.
fn labels(root: &Path, netns: &Path) -> Vec<(u64, Label)> {
    let mut reg = Namespaces::new(root, netns)
        .expect("open")
        .accept_plain_files();
    reg.refresh().expect("refresh");
    let proc = ProcRoot::open(root).expect("proc");
    reg.iter().map(|ns| (ns.inode, label(ns, &proc))).collect()
}

fn one(cgroup: &str) -> Option<Container> {
    container_from_cgroup(cgroup)
}

#[test]
fn docker_under_systemd_v2_and_v1_and_cgroupfs() {
    let want = Some(Container {
        runtime: Some(Runtime::Docker),
        id: "3f4e5a6b7c8d".into(),
        pod: None,
    });
    assert_eq!(one(&format!("0::/system.slice/docker-{ID}.scope\n")), want);
    let v1 = format!(
        "12:pids:/system.slice/docker-{ID}.scope\n\
         11:memory:/system.slice/docker-{ID}.scope\n\
         1:name=systemd:/system.slice/docker-{ID}.scope\n"
    );
    assert_eq!(one(&v1), want);
    let cgroupfs = format!("12:cpu,cpuacct:/docker/{ID}\n1:name=systemd:/docker/{ID}\n");
    assert_eq!(one(&cgroupfs), want);
}

#[test]
fn podman_containerd_and_cri_o() {
    let rootless = format!(
        "0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container\n"
    );
    assert_eq!(
        one(&rootless).and_then(|c| c.runtime),
        Some(Runtime::Podman)
    );
    assert_eq!(
        one(&format!("3:memory:/libpod_parent/libpod-{ID}\n")).map(|c| (c.runtime, c.id)),
        Some((Some(Runtime::Podman), "3f4e5a6b7c8d".into()))
    );
    // conmon watches a container from outside it: not the container.
    assert_eq!(
        one(&format!("0::/machine.slice/libpod-conmon-{ID}.scope\n")),
        None
    );
    assert_eq!(
        one(&format!("0::/system.slice/cri-containerd-{ID}.scope\n")).and_then(|c| c.runtime),
        Some(Runtime::Containerd)
    );
    assert_eq!(
        one(&format!("0::/machine.slice/crio-{ID}.scope\n")).and_then(|c| c.runtime),
        Some(Runtime::CriO)
    );
}

#[test]
fn kubernetes_pods_under_systemd_and_cgroupfs() {
    let underscored = UID.replace('-', "_");
    let systemd = format!(
        "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{underscored}.slice/cri-containerd-{ID}.scope\n"
    );
    assert_eq!(
        one(&systemd),
        Some(Container {
            runtime: Some(Runtime::Containerd),
            id: "3f4e5a6b7c8d".into(),
            pod: Some(UID.into()),
        })
    );
    let crio = format!("0::/kubepods.slice/kubepods-pod{underscored}.slice/crio-{ID}.scope\n");
    assert_eq!(one(&crio).and_then(|c| c.pod), Some(UID.into()));
    let cgroupfs = format!("4:memory:/kubepods/besteffort/pod{UID}/{ID}\n");
    assert_eq!(
        one(&cgroupfs),
        Some(Container {
            runtime: None,
            id: "3f4e5a6b7c8d".into(),
            pod: Some(UID.into()),
        })
    );
}

#[test]
fn paths_that_name_no_container() {
    for text in [
        "0::/init.scope\n",
        "0::/user.slice/user-1000.slice/session-2.scope\n",
        // Too short, upper case, or not under a runtime.
        "0::/system.slice/docker-3f4e5a6b7c8d.scope\n",
        &format!("0::/system.slice/docker-{}.scope\n", ID.to_uppercase()),
        &format!("0::/system.slice/{ID}\n"),
        &format!("0::/kubepods.slice/podnothex/{ID}\n"),
        "garbage without colons",
        "",
    ] {
        assert_eq!(one(text), None, "{text:?}");
    }
}

#[test]
fn labels_from_a_fixture_tree() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let proc = tmp.path().join("proc");
    let run = tmp.path().join("netns");
    process(
        &proc,
        1,
        100,
        "0::/init.scope\n",
        "systemd",
        Some(b"node-7\n"),
    );
    process(
        &proc,
        200,
        201,
        &format!("0::/system.slice/docker-{ID}.scope\n"),
        "nginx",
        Some(b"web-1\n"),
    );
    let underscored = UID.replace('-', "_");
    // A pod: the pause process first, then the application.
    let pod = format!(
        "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{underscored}.slice/cri-containerd-{ID}.scope\n"
    );
    process(&proc, 300, 301, &pod, "pause", Some(b"shop-7d9f-x2x\n"));
    process(&proc, 302, 301, &pod, "shop", Some(b"shop-7d9f-x2x\n"));
    // No container: a systemd service with PrivateNetwork=.
    process(
        &proc,
        400,
        401,
        "0::/system.slice/private.service\n",
        "svc",
        None,
    );

    let labels = labels(&proc, &run);
    let get = |inode: u64| &labels.iter().find(|(i, _)| *i == inode).expect("ns").1;
    assert_eq!(get(100).text, "host");
    assert_eq!(get(100).origin, Origin::Host);
    assert_eq!(get(100).to_string(), "host (node-7, systemd)");
    let docker = get(201);
    assert_eq!(docker.text, "docker:3f4e5a6b7c8d");
    assert_eq!(docker.to_string(), "docker:3f4e5a6b7c8d (web-1, nginx)");
    let pod = get(301);
    assert_eq!(pod.text, format!("pod:{UID}"));
    assert_eq!(pod.hostname.as_deref(), Some("shop-7d9f-x2x"));
    assert_eq!(pod.comm.as_deref(), Some("pause"));
    let plain = get(401);
    assert_eq!(plain.text, "netns:[401]");
    assert_eq!(plain.origin, Origin::Inode);
    assert_eq!(plain.to_string(), "netns:[401] (svc)");
}

#[test]
fn an_ip_netns_name_wins_over_the_container() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let proc = tmp.path().join("proc");
    let run = tmp.path().join("netns");
    std::fs::create_dir_all(&run).expect("mkdir");
    std::fs::write(run.join("lab-a"), b"").expect("name");
    let inode = std::fs::metadata(run.join("lab-a")).expect("stat").ino();
    process(
        &proc,
        10,
        inode,
        &format!("0::/system.slice/docker-{ID}.scope\n"),
        "redis",
        None,
    );
    // A named namespace with no process inside.
    std::fs::write(run.join("empty"), b"").expect("name");
    let empty = std::fs::metadata(run.join("empty")).expect("stat").ino();

    let labels = labels(&proc, &run);
    let named = &labels.iter().find(|(i, _)| *i == inode).expect("ns").1;
    assert_eq!(named.text, "lab-a");
    assert_eq!(named.origin, Origin::IpNetns("lab-a".into()));
    assert_eq!(named.comm.as_deref(), Some("redis"));
    let c = named
        .container
        .as_ref()
        .expect("the container is still known");
    assert_eq!(c.id, ID[..SHORT_ID]);
    let alone = &labels.iter().find(|(i, _)| *i == empty).expect("ns").1;
    assert_eq!(alone.to_string(), "empty");
}

#[test]
fn a_name_podman_made_up_gives_way_to_the_container() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let proc = tmp.path().join("proc");
    let run = tmp.path().join("netns");
    std::fs::create_dir_all(&run).expect("mkdir");
    let made_up = "netns-5bf1d0c3-893d-0e49-cf16-41356247c9b6";
    std::fs::write(run.join(made_up), b"").expect("name");
    let inode = std::fs::metadata(run.join(made_up)).expect("stat").ino();
    // Podman with the cgroupfs manager on a v1 host.
    let cg =
        format!("9:name=systemd:/libpod_parent/libpod-{ID}\n8:pids:/libpod_parent/libpod-{ID}\n");
    process(&proc, 10, inode, &cg, "busybox", Some(b"bbhost\n"));
    // The same kind of name with no container behind it stays the label.
    let lone = "cni-0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";
    std::fs::write(run.join(lone), b"").expect("name");
    let lone_inode = std::fs::metadata(run.join(lone)).expect("stat").ino();

    let labels = labels(&proc, &run);
    let get = |inode: u64| &labels.iter().find(|(i, _)| *i == inode).expect("ns").1;
    let pod = get(inode);
    assert_eq!(pod.text, format!("podman:{}", &ID[..SHORT_ID]));
    assert_eq!(
        pod.to_string(),
        format!("podman:{} (bbhost, busybox)", &ID[..SHORT_ID])
    );
    assert_eq!(get(lone_inode).text, lone);
    assert!(!generated_name("netns-lab"), "a name a person chose");
}

#[test]
fn hostile_hostnames_and_names_are_bounded_and_escaped() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let proc = tmp.path().join("proc");
    let run = tmp.path().join("netns");
    let cg = format!("0::/system.slice/docker-{ID}.scope\n");
    let long = "h".repeat(10_000);
    process(
        &proc,
        10,
        11,
        &cg,
        "evil\u{1b}]0;pwn\u{7}",
        Some(b"\x1b[2Jx\xff\n2nd"),
    );
    process(&proc, 20, 21, &cg, "ok", Some(long.as_bytes()));
    // A hostname that is a link to a host file, or a fifo, is not read.
    process(&proc, 30, 31, &cg, "ok", None);
    std::fs::create_dir_all(proc.join("30/root/etc")).expect("mkdir");
    let secret = tmp.path().join("secret");
    std::fs::write(&secret, "host-secret\n").expect("secret");
    symlink(&secret, proc.join("30/root/etc/hostname")).expect("symlink");
    process(&proc, 40, 41, &cg, "ok", None);
    std::fs::create_dir_all(proc.join("40/root/etc")).expect("mkdir");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        proc.join("40/root/etc/hostname"),
        rustix::fs::FileType::Fifo,
        Mode::from_raw_mode(0o600),
        0,
    )
    .expect("mkfifo");
    // `etc` itself a link out of the container's root.
    process(&proc, 50, 51, &cg, "ok", None);
    std::fs::create_dir_all(proc.join("50/root")).expect("mkdir");
    std::fs::create_dir_all(tmp.path().join("etc")).expect("mkdir");
    std::fs::write(tmp.path().join("etc/hostname"), "outside\n").expect("w");
    symlink(tmp.path().join("etc"), proc.join("50/root/etc")).expect("symlink");
    // An `ip netns` name with a control character in it.
    std::fs::create_dir_all(&run).expect("mkdir");
    std::fs::write(run.join("a\u{1b}b"), b"").expect("name");

    let labels = labels(&proc, &run);
    let get = |inode: u64| &labels.iter().find(|(i, _)| *i == inode).expect("ns").1;
    let evil = get(11);
    assert_eq!(evil.hostname.as_deref(), Some("\\x1b[2Jx\u{fffd}"));
    assert_eq!(evil.comm.as_deref(), Some("evil\\x1b]0;pwn\\x07"));
    let long = get(21).hostname.as_deref().expect("cut");
    assert_eq!(long.chars().count(), MAX_TEXT_CHARS + 1, "{long}");
    assert!(long.ends_with('…'));
    assert_eq!(get(31).hostname, None);
    assert_eq!(get(41).hostname, None);
    assert_eq!(get(51).hostname, None);
    let named = labels
        .iter()
        .find(|(_, l)| matches!(l.origin, Origin::IpNetns(_)))
        .expect("named");
    assert_eq!(named.1.text, "a\\x1bb");
}
