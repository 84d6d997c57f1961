using IsoTest.Engine.Tests.Support;

namespace IsoTest.Engine.Tests.Security;

/// <summary>
/// Issue 8, finding 4: a key in the session keyring of whoever started the engine was readable inside,
/// by its id or by a search. init joins a fresh session keyring (as runc does), so nothing of the host's
/// session is possessed inside.
/// </summary>
public sealed class SessionKeyringTests
{
    // keyctl(2) and add_key(2) through ctypes: the numbers differ per architecture.
    private const string Syscalls = """
        import ctypes, platform
        libc = ctypes.CDLL(None, use_errno=True)
        KEYCTL, ADD_KEY = {"x86_64": (250, 248), "aarch64": (219, 217)}[platform.machine()]
        """;

    [Fact]
    public async Task HostSessionKey_IsNotReadableInside()
    {
        // The planting process joins a session keyring of its own first, so the key never reaches the
        // test host's (or the CI user's) session.
        var setup = """
            KEYCTL, ADD_KEY = {"x86_64": (250, 248), "aarch64": (219, 217)}[arch]
            libc.syscall(KEYCTL, 1, None)                           # KEYCTL_JOIN_SESSION_KEYRING
            kid = libc.syscall(ADD_KEY, b"user", b"isotest-probe", b"host-secret-key", 15, -3)   # @s
            if kid <= 0: raise SystemExit("add_key failed: errno %d" % ctypes.get_errno())
            script = script.replace("KEY_ID", str(kid))
            """;
        var probe = Syscalls + "\n" + """
            buf = ctypes.create_string_buffer(64)
            r = libc.syscall(KEYCTL, 11, KEY_ID, buf, 64)                                 # KEYCTL_READ by id
            print("read", r, ctypes.get_errno(), buf.raw[:max(r, 0)].decode())
            found = libc.syscall(KEYCTL, 10, -3, b"user", b"isotest-probe", 0)            # KEYCTL_SEARCH @s
            print("search", found, ctypes.get_errno())
            if found > 0:
                r = libc.syscall(KEYCTL, 11, found, buf, 64)
                print("read-found", r, buf.raw[:max(r, 0)].decode())
            print("checked")
            """;

        // Unconfined: Docker's seccomp profile denies keyctl altogether, which would hide what the keyring does.
        var output = await InheritingOwner.RunAsync(setup, $"/usr/bin/python3 -c '{probe}'", unconfined: true);

        Assert.Contains("payload Stdout: checked", output);
        Assert.Contains("exec Stdout: checked", output);
        Assert.DoesNotContain("host-secret-key", output);
        Assert.Contains("payload Stdout: search -1", output);
    }
}
