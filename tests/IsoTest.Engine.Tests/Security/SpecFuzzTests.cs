using System.Diagnostics;

namespace IsoTest.Engine.Tests.Security;

/// <summary>
/// Issue 8, "Fuzz": malformed `spec` datagrams sent to the real agent over its real control socket (the
/// short version of bench/agent-fuzz, which runs libFuzzer on the parser in-process). Every case is
/// invalid by construction — an unknown or cut-short record, a bad number, flag, path or filter, a
/// table past its limit, too many fields, a wrong first verb, a bad first datagram of the mirror maker —
/// so none builds a container. Each must end with `error spec ERRNO DETAIL` and the agent's exit: no
/// crash, no hang, a clear error.
/// </summary>
public sealed class SpecFuzzTests
{
    private const string Driver = """
        import os, random, socket, sys
        agent, seed, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        rnd = random.Random(seed)
        good = [["root", "host"], ["readonly", "0"], ["netns", "1"], ["hostname", "h"], ["uid", "0"], ["gid", "0"],
                ["tmpfs", "/t", "", "rw"], ["sizes", "1", "2", "3"]]
        arity = {"root": 1, "readonly": 1, "userns": 2, "netns": 1, "hostname": 1, "uid": 1, "gid": 1, "bind": 3,
                 "tmpfs": 3, "cow": 2, "file": 5, "cg1": 1, "cg2": 1, "cg2join": 1, "seccomp": 2, "sizes": 3,
                 "joinuser": 1, "submounts": 1, "rotree": 1, "mirror": 1}
        def junk():
            return "".join(chr(rnd.randrange(1, 256)) for _ in range(rnd.randrange(0, 40)))
        def bad_record():
            kind = rnd.randrange(11)
            if kind == 0: return [junk() + "x"]                                   # unknown key
            if kind == 1: return [rnd.choice(["uid", "gid", "sizes"])] + ["-1" if rnd.random() < .5 else junk() + "z"] * 3
            if kind == 2: return ["readonly", rnd.choice(["2", "yes", "", junk() + "q"])]
            if kind == 3: return ["netns", rnd.choice(["4", "-1", "", junk() + "q"])]
            if kind == 4: return [rnd.choice(["bind", "cow", "file"]), "relative/" + junk(), "/d", "ro", "0", "0"][:1 + arity["bind"]]
            if kind == 5: return ["file", "/s", "/d", rnd.choice(["9", "77777", "x"]), "0", "0"]
            if kind == 6: return ["seccomp", "0", rnd.choice(["", "0", "zz" * 8, "00" * 7, junk() + "g"])]
            if kind == 7: return ["tmpfs", "/t", "", rnd.choice(["", "RW", "rO"])]
            if kind == 8: return rnd.choice([["joinuser", rnd.choice(["2", "", "yes"])],           # a flag; one user namespace only
                                             ["joinuser", "1", "userns", "0 1 1", "0 1 1"], ["netns", "3", "joinuser", "1"],
                                             ["mirror", rnd.choice(["1", "s", "", "/s"])],                    # a staging path; joinuser and root host only
                                             ["joinuser", "1", "mirror", "/" + "s" * 200],                    # past the agent's staging path limit
                                             ["joinuser", "1", "root", "/x", "mirror", "/s"]])
            if kind == 9:
                key = rnd.choice(["submounts", "rotree"])
                return [key, "relative/" + junk()] if rnd.random() < .5 else [f for _ in range(257) for f in (key, "/d")]
            return [rnd.choice(list(arity))]                                       # cut short: no values
        def bad_maker():                                                          # the mirror maker's first datagram
            return rnd.choice([["mirror", "0", "/s"],                                 # no count of submounts
                               ["mirror", "0", "/s", "3", "/a"],                      # a count past the fields
                               ["mirror", "0", "/s", rnd.choice(["-1", "x", "", "257"])],
                               ["mirror", "0", "/s", "1", "/a", "relative"],          # a read-only tree not absolute
                               ["mirror", "0", "/s", "0"] + ["/d"] * 257,            # past 256 read-only trees
                               ["mirror", "x", "/s", "0"], ["mirror", "0", "s", "0"]])
        def case(i):
            fields = ["spec"] + [f for r in rnd.sample(good, rnd.randrange(len(good))) for f in r]
            shape = i % 5
            if shape == 0: fields += bad_record()
            elif shape == 1: fields = bad_maker() if rnd.random() < .5 else [rnd.choice(["start", "kill", "", junk()])] + fields[1:]
            elif shape == 2: fields += [f for _ in range(257) for f in ("tmpfs", "/t", "", "rw")]    # past 256 mounts
            elif shape == 3: fields += ["hostname", "h"] * 4100                                        # past 8192 fields
            else:
                fields += bad_record()
                data = b"".join(f.encode("utf-8", "surrogateescape") + b"\0" for f in fields)
                return data[:rnd.randrange(len(data) - 1, len(data) + 1)]                             # maybe no final NUL
            return b"".join(f.encode("utf-8", "surrogateescape") + b"\0" for f in fields)
        errors = {}
        for i in range(count):
            ctl, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            null = os.open("/dev/null", os.O_RDWR)
            pid = os.posix_spawn(agent, ["isotest-init"], {}, file_actions=[
                (os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, null, 2),
                (os.POSIX_SPAWN_DUP2, theirs.fileno(), 3)])
            theirs.close(); os.close(null)
            data = case(i)
            ctl.send(data)
            ctl.settimeout(20)
            reply = ctl.recv(65536).split(b"\0")
            _, status = os.waitpid(pid, 0)
            ctl.close()
            if reply[0] != b"error" or reply[1] != b"spec" or not reply[3] or os.WEXITSTATUS(status) != 1 or os.WIFSIGNALED(status):
                print("BAD", i, repr(data[:200]), reply[:4], status); sys.exit(1)
            errors[reply[2].decode()] = errors.get(reply[2].decode(), 0) + 1
        print("ran", count, "errnos", sorted(errors.items()))
        """;

    [Fact]
    public async Task MalformedSpecs_EachEndsWithAClearSpecError()
    {
        var agent = Path.Combine(AppContext.BaseDirectory, "isotest-init");
        var start = new ProcessStartInfo("/usr/bin/python3", ["-c", Driver, agent, "8", "400"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var driver = System.Diagnostics.Process.Start(start)!;
        var stdout = driver.StandardOutput.ReadToEndAsync();
        var stderr = driver.StandardError.ReadToEndAsync();
        await driver.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(3));

        var output = await stdout + await stderr;
        Assert.True(driver.ExitCode == 0, output);
        Assert.StartsWith("ran 400 errnos [('22',", output);   // EINVAL
        Assert.Contains("('7',", output);                         // E2BIG: the limits
    }
}
