using System.Diagnostics;
using IsoTest.Engine.Native;
using IsoTest.Engine.Process;
using IsoTest.TestSupport;
using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Tests.Security;

/// <summary>
/// The filer (native/filer.c, Process/ContainerFiler.cs) holds every capability of a user namespace and runs in the
/// host's mount namespace, so its contract is what keeps a rootless copy inside a container: one name per call, never
/// followed; a path only through `open`, resolved inside the root it is sent; no right over the host's own files.
/// Attacked here directly, in a user namespace of the test's own (unshare), on a scratch tree standing in for a root.
/// </summary>
public sealed class FilerTests : IDisposable
{
    private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("isotest-filer-");
    private readonly System.Diagnostics.Process _holder;
    private readonly ContainerFiler _filer;

    public FilerTests()
    {
        // A process in a user namespace that maps the caller as 0, as a rootless container's does; its line says it is there.
        _holder = System.Diagnostics.Process.Start(new ProcessStartInfo("unshare", ["--user", "--map-root-user", "sh", "-c", "echo in; exec sleep 600"])
        {
            RedirectStandardOutput = true,
        })!;
        Assert.Equal("in", _holder.StandardOutput.ReadLine());
        var ns = $"/proc/{_holder.Id}/ns/user";
        using var userns = Open(ns, Libc.O_RDONLY);
        _filer = ContainerFiler.Start(EngineLoop.Shared, AgentLocator.Find(), userns);
    }

    [RootlessOnlyFact]
    public void Names_WithASlashOrDotDot_AreRefused_AndTheOneNameGiven_IsMade()
    {
        using var root = Open(_root.FullName, Libc.O_PATH | Libc.O_DIRECTORY);
        Assert.Equal(Libc.EINVAL, _filer.MakeDirectory(root, "a/b", 0x1ED));
        Assert.Equal(Libc.EINVAL, _filer.MakeDirectory(root, "..", 0x1ED));
        Assert.Equal(Libc.EINVAL, _filer.Symlink(root, "../up", "/etc"));
        Assert.Equal(Libc.EINVAL, _filer.OpenAt(root, "../etc", Libc.O_RDONLY, 0, out _));
        Assert.Equal(0, _filer.MakeDirectory(root, "made", 0x1ED));
        Assert.True(Directory.Exists(Path.Combine(_root.FullName, "made")));
        Assert.False(Directory.Exists(Path.Combine(_root.FullName, "a")));
    }

    [RootlessOnlyFact]
    public void Paths_ResolveInsideTheRootTheyAreSent_ThroughDotDotAndAbsoluteSymlinks()
    {
        // The host has /etc/passwd; the scratch root has none: every way of climbing out lands inside the root.
        File.CreateSymbolicLink(Path.Combine(_root.FullName, "absolute"), "/etc");
        File.CreateSymbolicLink(Path.Combine(_root.FullName, "relative"), "../../../../../../etc");
        using var root = Open(_root.FullName, Libc.O_PATH | Libc.O_DIRECTORY);
        foreach (var path in new[] { "../../../../etc/passwd", "/etc/passwd", "absolute/passwd", "relative/passwd" })
        {
            Assert.Equal(Libc.ENOENT, _filer.OpenInRoot(root, path, Libc.O_RDONLY, out var handle));
            Assert.Null(handle);
        }

        // .. stops at the root, / is the root: both reach the root's own file.
        File.WriteAllText(Path.Combine(_root.FullName, "inside"), "in");
        foreach (var path in new[] { "../../inside", "/inside" })
        {
            Assert.Equal(0, _filer.OpenInRoot(root, path, Libc.O_RDONLY, out var inside));
            using var stream = new FileStream(inside!, FileAccess.Read);
            Assert.Equal("in", new StreamReader(stream).ReadToEnd());
        }
    }

    [RootlessOnlyFact]
    public void TheHostsOwnFiles_StayOutOfReach()
    {
        // Every capability of the namespace, none over ids it does not map: root's /usr refuses it as it refuses the caller.
        using var usr = Open("/usr", Libc.O_PATH | Libc.O_DIRECTORY);
        Assert.Equal(Libc.EACCES, _filer.MakeDirectory(usr, "isotest-filer-probe", 0x1ED));
        Assert.Equal(Libc.EPERM, _filer.Chown(usr, "bin", 0, 0)); // 0 is mapped (the caller); bin's owner is not
        Assert.False(Directory.Exists("/usr/isotest-filer-probe"));
    }

    [Fact]
    public void AFilerThatCannotJoinItsNamespace_FailsItsFirstCallSayingSo()
    {
        // /dev/null is no user namespace: setns refuses, the agent reports it and exits; the call says what happened.
        using var devNull = Open("/dev/null", Libc.O_RDONLY);
        using var broken = ContainerFiler.Start(EngineLoop.Shared, AgentLocator.Find(), devNull);
        using var root = Open(_root.FullName, Libc.O_PATH | Libc.O_DIRECTORY);
        var error = Assert.Throws<LayerTreeException>(() => broken.MakeDirectory(root, "never", 0x1ED));
        Assert.Contains("the agent that writes the container's files from its user namespace", error.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_root.FullName, "never")));
    }

    public void Dispose()
    {
        _filer.Dispose();
        _holder.Kill();
        _holder.WaitForExit();
        _holder.Dispose();
        _root.Delete(recursive: true);
    }

    private static SafeFileHandle Open(string path, int flags)
    {
        var fd = Libc.open(path, flags | Libc.O_CLOEXEC, 0);
        Assert.True(fd >= 0, $"open {path}: errno {Libc.Errno}");
        return new SafeFileHandle(fd, ownsHandle: true);
    }
}
