using IsoTest.Engine.Security;
using IsoTest.Engine.Tests.Support;

namespace IsoTest.Engine.Tests.Security;

/// <summary>
/// Issue 8, finding 3, inside real containers: the agent installs the engine's compiled profile right
/// before every exec (payload and exec'd commands), after no_new_privs. Denied: what Docker's default
/// profile denies an unprivileged container; still working: what real images need.
/// </summary>
public sealed class SeccompContainerTests(EngineFixture fixture) : IClassFixture<EngineFixture>
{
    private readonly EngineBackend _engine = fixture.Engine;

    // Each probe is a raw syscall through ctypes; prints "name errno" (0: it succeeded).
    private const string Probe = """
        import ctypes, sys
        libc = ctypes.CDLL(None, use_errno=True)
        for spec in sys.argv[1:]:
            name, *nums = spec.split(":")
            ctypes.set_errno(0)
            r = libc.syscall(*[ctypes.c_long(int(n)) for n in nums])
            print(name, ctypes.get_errno() if r == -1 else 0)
        """;

    private static string Call(string name, params long[] args) =>
        $"{name}:{SyscallTable.Number(SyscallTable.Native!.Value, name)}" + string.Concat(args.Select(a => ":" + a));

    private static readonly string[] DeniedCalls =
    [
        Call("keyctl", 0, -3, 0),                   // KEYCTL_GET_KEYRING_ID of the session keyring
        Call("add_key", 0, 0, 0, 0, 0),
        Call("perf_event_open", 0, 0, -1, -1, 0),
        Call("userfaultfd", 0),
        Call("bpf", 0, 0, 0),
        Call("kexec_load", 0, 0, 0, 0),
        Call("init_module", 0, 0, 0),
        Call("io_uring_setup", 1, 0),
        Call("unshare", 0x10000000),                // CLONE_NEWUSER
    ];

    [Fact]
    public async Task Payload_RunsUnderTheFilter_DangerousSyscallsAreDenied()
    {
        var result = await _engine.RunAsync(Specs.Host(["/usr/bin/python3", "-c", Probe, .. DeniedCalls]));

        Assert.True(result.ExitCode == 0, result.Stderr);
        foreach (var call in DeniedCalls)
        {
            Assert.Contains($"{call.Split(':')[0]} 1\n", result.Stdout); // EPERM
        }
    }

    [Fact]
    public async Task StatusSaysFiltered_ForThePayloadAndForExecs()
    {
        await using var container = await _engine.CreateAsync(Specs.Shell("grep '^Seccomp:' /proc/self/status; sleep 60"));
        await container.StartAsync();
        // The payload's own line first: stopped before its grep ran, the shell would leave no line to check.
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        string? payload = null;
        await foreach (var line in container.FollowLogsAsync(timeout.Token))
        {
            payload = line.Text;
            break;
        }

        var exec = await container.ExecAsync(["grep", "^Seccomp:", "/proc/self/status"]);
        await container.StopAsync(TimeSpan.FromSeconds(1));

        Assert.Equal("Seccomp:\t2", payload);
        Assert.Equal("Seccomp:\t2\n", exec.Stdout);
    }

    [Fact]
    public async Task UnshareUserThenMount_IsDenied()
    {
        // Without seccomp, `unshare -Urm` gives a full capability set in a new user namespace and a tmpfs mounts.
        var result = await _engine.RunAsync(Specs.Shell("unshare -Urm mount -t tmpfs none /mnt 2>&1 && echo mounted; echo done"));

        Assert.DoesNotContain("mounted", result.Stdout);
        Assert.Contains("done", result.Stdout);
    }

    [Fact]
    public async Task Unconfined_HasNoFilter()
    {
        var result = await _engine.RunAsync(Specs.Shell("grep '^Seccomp:' /proc/self/status") with { Seccomp = SeccompProfile.Unconfined });

        Assert.Equal("Seccomp:\t0\n", result.Stdout);
    }

    [Fact]
    public async Task WhatImagesNeed_StillWorks()
    {
        // ping needs a raw socket (CAP_NET_RAW, Docker keeps it); chown, a server on a port, fork/exec,
        // threads (clone without namespace flags) and a personality query are all allowed by Docker's profile.
        // Rootless maps only the caller's own id (as 0), so chown can only give files to it.
        var owner = Specs.IsRoot ? "1:1" : "0:0";
        var result = await _engine.RunAsync(Specs.Shell(
            "busybox ping -c 1 -W 5 127.0.0.1 >/dev/null && echo ping; " +
            $"touch /tmp/f && chown {owner} /tmp/f && echo chown; " +
            "(busybox nc -l -p 7070 -e echo hi &) ; sleep 0.3; busybox nc 127.0.0.1 7070 </dev/null | grep -q hi && echo server; " +
            "/usr/bin/python3 -c 'import threading; t = threading.Thread(target=print, args=(\"thread\",)); t.start(); t.join()'; " +
            "setarch -R true 2>/dev/null || echo no-aslr-denied"));

        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.Equal("ping\nchown\nserver\nthread\nno-aslr-denied\n", result.Stdout);
    }
}
