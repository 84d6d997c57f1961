using IsoTest.Engine.Tests.Support;

namespace IsoTest.Engine.Tests.Security;

/// <summary>
/// Issue 8, finding 2: whatever started the engine may hold descriptors it did not mark close-on-exec
/// (a shell's `exec 7&lt;file`). The agent closes every descriptor PROTOCOL.md does not list and marks the
/// rest close-on-exec before any exec, so neither the payload nor an exec'd command can use them.
/// </summary>
public sealed class InheritedDescriptorTests
{
    [Fact]
    public async Task InheritedHostDescriptors_CannotBeReadOrWrittenInside()
    {
        var dir = Directory.CreateTempSubdirectory("isotest-fds-");
        try
        {
            var secret = Path.Combine(dir.FullName, "secret");
            var log = Path.Combine(dir.FullName, "log");
            await File.WriteAllTextAsync(secret, "host-secret-content\n");
            await File.WriteAllTextAsync(log, "");
            // 4 is also where a ready network namespace goes (netns 2): a stray one must not survive there.
            var setup = $"""
                r = os.open("{secret}", os.O_RDONLY)
                w = os.open("{log}", os.O_WRONLY | os.O_APPEND)
                for fd, src in ((4, r), (7, r), (8, w), (9, w)):
                    os.dup2(src, fd)
                """;
            const string script = """
                for fd in 4 7 8 9; do
                    if [ -e /proc/self/fd/$fd ]; then echo "open $fd"; fi
                    if sh -c "cat <&$fd" 2>/dev/null; then echo "read $fd"; fi
                    if sh -c "echo pwned >&$fd" 2>/dev/null; then echo "wrote $fd"; fi
                done
                echo checked
                """;

            var output = await InheritingOwner.RunAsync(setup, script);

            Assert.Contains("payload Stdout: checked", output);
            Assert.Contains("exec Stdout: checked", output);
            Assert.DoesNotContain("host-secret-content", output);
            Assert.DoesNotContain("open ", output);
            Assert.DoesNotContain("read ", output);
            Assert.DoesNotContain("wrote ", output);
            Assert.Equal("", await File.ReadAllTextAsync(log));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
