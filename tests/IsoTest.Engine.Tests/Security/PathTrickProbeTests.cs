using IsoTest.Engine.Tests.Support;

namespace IsoTest.Engine.Tests.Security;

/// <summary>
/// Symlink and <c>..</c> tricks in a directory root: mount and file targets that would resolve to the host through
/// an absolute symlink, a relative climb or <c>..</c> are resolved inside the root (root and rootless). Whatever
/// the engine does with them, nothing appears on the host and the host's files stay unchanged.
/// </summary>
public sealed class PathTrickProbeTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("isotest-pathprobe-").FullName;
    private readonly string _root;
    private readonly string _hostSide;

    public PathTrickProbeTests()
    {
        // A minimal root: a static busybox and its applets, plus the tricks.
        _root = Path.Combine(_dir, "root");
        foreach (var d in (string[])["bin", "tmp", "etc", "proc", "dev", "sys"])
        {
            Directory.CreateDirectory(Path.Combine(_root, d));
        }

        File.Copy("/bin/busybox", Path.Combine(_root, "bin/busybox"));
        File.CreateSymbolicLink(Path.Combine(_root, "bin/sh"), "busybox");
        File.CreateSymbolicLink(Path.Combine(_root, "bin/cat"), "busybox");
        File.CreateSymbolicLink(Path.Combine(_root, "bin/ls"), "busybox");
        File.WriteAllText(Path.Combine(_root, "etc/passwd"), "root:x:0:0:root:/:/bin/sh\n");
        File.WriteAllText(Path.Combine(_root, "etc/group"), "root:x:0:\n");

        // The host directory an escape would reach.
        _hostSide = Path.Combine(_dir, "host-side");
        Directory.CreateDirectory(_hostSide);
        File.WriteAllText(Path.Combine(_hostSide, "victim"), "unchanged");
        File.CreateSymbolicLink(Path.Combine(_root, "abs"), _hostSide);                      // absolute: the host path
        File.CreateSymbolicLink(Path.Combine(_root, "rel"), "../../../../../../../" + _hostSide.TrimStart('/')); // climbs out
        File.CreateSymbolicLink(Path.Combine(_root, "etc/victim"), Path.Combine(_hostSide, "victim"));
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string> Targets => new() { "/abs/escaped", "/rel/escaped", "/tmp/../abs/escaped", "/tmp/../../../../abs/escaped" };

    [Theory]
    [MemberData(nameof(Targets))]
    public async Task TmpfsTarget_ThroughSymlinkOrDotDot_StaysInside(string target)
    {
        await AssertContained(b => b.WithTmpfsMount(target), $"ls -d {target} && echo seen");
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public async Task BindTarget_ThroughSymlinkOrDotDot_StaysInside(string target)
    {
        var source = Directory.CreateDirectory(Path.Combine(_dir, "bind-src")).FullName;
        await File.WriteAllTextAsync(Path.Combine(source, "hello"), "from bind");
        await AssertContained(b => b.WithBindMount(source, target, readOnly: true), $"cat {target}/hello");
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public async Task FileTarget_ThroughSymlinkOrDotDot_StaysInside(string target)
    {
        await AssertContained(b => b.WithFile(target, "planted"), $"cat {target}");
    }

    [Fact]
    public async Task FileTarget_ThatIsASymlinkToAHostFile_DoesNotOverwriteIt()
    {
        await AssertContained(b => b.WithFile("/etc/victim", "overwritten"), "cat /etc/victim");
    }

    private async Task AssertContained(Func<ContainerBuilder, ContainerBuilder> trick, string script)
    {
        await using var engine = new EngineBackend();
        ContainerSpec spec;
        try
        {
            spec = trick(new ContainerBuilder().FromDirectory(_root).WithCommand("/bin/sh", "-c", script)).Build();
        }
        catch (InvalidContainerSpecException)
        {
            AssertHostUntouched(); // refused up front: contained too
            return;
        }

        try
        {
            await engine.RunAsync(spec);
        }
        catch (IsoTestException)
        {
            // Refused by the engine (e.g. a target that resolves outside): contained as long as the host is untouched.
        }

        AssertHostUntouched();
    }

    private void AssertHostUntouched()
    {
        Assert.Equal(["victim"], Directory.GetFileSystemEntries(_hostSide).Select(Path.GetFileName));
        Assert.Equal("unchanged", File.ReadAllText(Path.Combine(_hostSide, "victim")));
    }
}
