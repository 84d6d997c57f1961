using IsoTest.Cli.Commands;

namespace IsoTest.Cli.Tests;

/// <summary>
/// <c>isotest run</c>'s flags (System.CommandLine behind Docker's conventions) over Docker's flag forms. Docker's CLI (spf13/pflag, interspersed
/// flags off) accepts each of these forms; isotest must give the same meaning.
/// </summary>
public sealed class RunParserTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("isotest-cli-parser-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static RunRequest Parse(params string[] args) =>
        RunCommandLine.Parse(args, name => name == "ISOTEST_CLI_TEST_FROM_HOST" ? "from-host" : null)
        ?? throw new InvalidOperationException("help was returned");

    [Theory]
    [InlineData("-m", "64m")]
    [InlineData("-m64m")]
    [InlineData("-m=64m")]
    [InlineData("--memory", "64m")]
    [InlineData("--memory=64m")]
    [InlineData("--memory", "64MB")]
    [InlineData("--memory", "67108864")]
    public void Memory_EveryDockerForm_Sets64MiB(params string[] flags)
    {
        var spec = Parse([.. flags, "host", "true"]).Spec;
        Assert.Equal(64L << 20, spec.Limits.MemoryBytes);
    }

    [Theory]
    [InlineData("80", 80, null)]
    [InlineData("80/tcp", 80, null)]
    [InlineData("18080:80", 80, 18080)]
    [InlineData("127.0.0.1:18080:80", 80, 18080)]
    [InlineData("127.0.0.1::80", 80, null)]
    [InlineData("0.0.0.0:18080:80/tcp", 80, 18080)]
    public void Publish_EveryDockerForm_PublishesTheContainerPort(string value, int containerPort, int? hostPort)
    {
        var spec = Parse("-p", value, "host", "true").Spec;
        Assert.Equal([containerPort], spec.Ports);
        Assert.Equal(hostPort, spec.HostPorts.TryGetValue(containerPort, out var bound) ? bound : null);
    }

    [Fact]
    public void SecurityOpt_Seccomp_TakesDockersValues()
    {
        var file = Path.Combine(_dir, "profile.json");
        File.WriteAllText(file, """{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["keyctl"],"action":"SCMP_ACT_ERRNO"}]}""");

        Assert.Same(SeccompProfile.Default, Parse("host", "true").Spec.Seccomp);
        Assert.Same(SeccompProfile.Unconfined, Parse("--security-opt", "seccomp=unconfined", "host", "true").Spec.Seccomp);
        Assert.Same(SeccompProfile.Unconfined, Parse("--security-opt=seccomp:unconfined", "host", "true").Spec.Seccomp);
        Assert.Equal(file, Parse("--security-opt", $"seccomp={file}", "--security-opt", "no-new-privileges", "host", "true").Spec.Seccomp.SourcePath);
        Assert.Same(SeccompProfile.Default, Parse("--security-opt", "seccomp=unconfined", "--security-opt", "seccomp=default", "host", "true").Spec.Seccomp);
    }

    [Theory]
    [InlineData("apparmor=unconfined", "'apparmor' is not supported")]
    [InlineData("no-new-privileges=false", "cannot be turned off")]
    [InlineData("seccomp=", "seccomp needs a value")]
    [InlineData("seccomp=/nonexistent/profile.json", "cannot read the seccomp profile /nonexistent/profile.json")]
    [InlineData("seccomp={\"defaultAction\":\"SCMP_ACT_NOPE\"}", "unknown action 'SCMP_ACT_NOPE'")]
    public void SecurityOpt_Bad_SaysWhy(string value, string expected)
    {
        var ex = Assert.ThrowsAny<Exception>(() => Parse("--security-opt", value, "host", "true"));

        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Memory_Zero_MeansNoLimitAsInDocker() =>
        Assert.Null(Parse("-m", "0", "host", "true").Spec.Limits.MemoryBytes);

    [Theory]
    [InlineData(new[] { "--cpus", "0.5" }, 0.5)]
    [InlineData(new[] { "--cpus=1.5" }, 1.5)]
    [InlineData(new[] { "--cpus", "0.01" }, 0.01)]
    public void Cpus_DockerForms_SetCap(string[] flags, double expected) =>
        Assert.Equal(expected, Parse([.. flags, "host", "true"]).Spec.Limits.Cpus);

    [Theory]
    [InlineData("64", 64L)]
    [InlineData("-1", null)]
    [InlineData("0", null)]
    public void PidsLimit_MinusOneAndZero_MeanUnlimited(string value, long? expected) =>
        Assert.Equal(expected, Parse("--pids-limit", value, "host", "true").Spec.Limits.Pids);

    [Theory]
    [InlineData("0")]
    [InlineData("0-1")]
    [InlineData("0,1")]
    public void CpusetCpus_ValidList_IsKept(string value) =>
        Assert.Equal(value, Parse("--cpuset-cpus", value, "host", "true").Spec.Limits.CpusetCpus);

    [Fact]
    public void Env_EveryForm_RepeatedAndInherited()
    {
        var spec = Parse(
            "-e", "A=1", "-eB=2", "-e=C=3", "--env", "D=4", "--env=E=5=five", "-e", "EMPTY=",
            "-e", "ISOTEST_CLI_TEST_FROM_HOST", "-e", "ISOTEST_CLI_TEST_UNSET", "-e", "A=override",
            "host", "true").Spec;

        Assert.Equal(
            new Dictionary<string, string>
            {
                ["A"] = "override",
                ["B"] = "2",
                ["C"] = "3",
                ["D"] = "4",
                ["E"] = "5=five",
                ["EMPTY"] = "",
                ["ISOTEST_CLI_TEST_FROM_HOST"] = "from-host", // -e KEY copies it from here, like docker
            },
            spec.Environment);
    }

    [Fact]
    public void Env_KeyAlone_ReadsTheRealEnvironmentByDefault()
    {
        var name = "ISOTEST_CLI_TEST_" + Guid.NewGuid().ToString("N");
        Environment.SetEnvironmentVariable(name, "real value");
        try
        {
            var request = RunCommandLine.Parse(["-e", name, "host", "true"])!;
            Assert.Equal("real value", request.Spec.Environment[name]);
        }
        finally
        {
            Environment.SetEnvironmentVariable(name, null);
        }
    }

    [Fact]
    public void ShortAndLongFlags_AllLandInTheSpec()
    {
        var request = Parse(
            "--rm", "--name", "web-1", "-w", "/srv", "-u", "1000:1000", "-h", "box",
            "--read-only", "--network", "host", "--stop-timeout", "3", "host", "sh", "-c", "echo hi");
        var spec = request.Spec;

        Assert.True(request.Remove);
        Assert.Equal("web-1", spec.Name);
        Assert.Equal("/srv", spec.WorkingDirectory);
        Assert.Equal("1000:1000", spec.User);
        Assert.Equal("box", spec.Hostname);
        Assert.True(spec.ReadOnlyRootFileSystem);
        Assert.Equal(Network.Host, spec.Network);
        Assert.Equal(TimeSpan.FromSeconds(3), spec.StopTimeout);
        Assert.Equal(RootFileSystem.Host, spec.RootFileSystem);
        Assert.Equal(["sh", "-c", "echo hi"], spec.Command);
    }

    [Fact]
    public void RepeatedValueFlag_LastOneWins_LikePflag()
    {
        var spec = Parse("-m", "32m", "--memory=64m", "--name", "a1", "--name", "b2", "host", "true").Spec;
        Assert.Equal(64L << 20, spec.Limits.MemoryBytes);
        Assert.Equal("b2", spec.Name);
    }

    [Fact]
    public void CombinedShortFlags_AreEachApplied()
    {
        // -we: a bool-free Docker bundle is rare, so this pins the general rule: letters until one takes a value.
        var spec = Parse("-uroot", "-w/srv", "-eA=1", "host", "true").Spec;
        Assert.Equal("root", spec.User);
        Assert.Equal("/srv", spec.WorkingDirectory);
        Assert.Equal("1", spec.Environment["A"]);
    }

    [Fact]
    public void AtSign_IsAnArgument_NotAResponseFile() =>
        Assert.Equal(["echo", "@/etc/passwd"], Parse("host", "echo", "@/etc/passwd").Spec.Command);

    [Fact]
    public void Defaults_MatchDocker()
    {
        var request = Parse("host", "true");
        Assert.False(request.Remove);
        Assert.Equal(Network.Private, request.Spec.Network);
        Assert.False(request.Spec.Limits.Any);
        Assert.False(request.Spec.ReadOnlyRootFileSystem);
        Assert.Equal(TimeSpan.FromSeconds(10), request.Spec.StopTimeout);
        Assert.Empty(request.Spec.Mounts);
        Assert.Empty(request.Spec.Environment);
    }

    [Theory]
    [InlineData("--rm=false", false)]
    [InlineData("--rm=true", true)]
    [InlineData("--rm=1", true)]
    [InlineData("--rm", true)]
    public void BoolFlag_ExplicitValue_IsHonoured(string flag, bool expected) =>
        Assert.Equal(expected, Parse(flag, "host", "true").Remove);

    [Theory]
    [InlineData("none")]
    [InlineData("private")]
    public void Network_None_IsThePrivateLoopbackNamespace(string value) =>
        Assert.Equal(Network.Private, Parse("--net", value, "host", "true").Spec.Network);

    [Fact]
    public void Options_StopAtRootFs_RestIsTheCommandVerbatim()
    {
        var spec = Parse("-e", "A=1", "host", "ls", "-m", "--rm", "-e", "x", "--", "--foo").Spec;
        Assert.Equal(["ls", "-m", "--rm", "-e", "x", "--", "--foo"], spec.Command);
        Assert.Null(spec.Limits.MemoryBytes);
    }

    [Fact]
    public void DoubleDash_EndsOptions()
    {
        var spec = Parse("--rm", "--", "host", "true").Spec;
        Assert.Equal(["true"], spec.Command);
    }

    [Fact]
    public void ValueFlag_TakesNextArgumentEvenWithDash_LikePflag()
    {
        var spec = Parse("-e", "--rm=1", "host", "true").Spec;
        Assert.Equal("1", spec.Environment["--rm"]);
        Assert.False(Parse("-e", "--rm=1", "host", "true").Remove);
    }

    [Fact]
    public void Help_AmongOptions_ReturnsNull()
    {
        Assert.Null(RunCommandLine.Parse(["--rm", "--help"]));
        Assert.Null(RunCommandLine.Parse(["--help", "host", "true"]));
    }

    [Fact]
    public void Help_AfterRootFs_IsPartOfTheCommand() =>
        Assert.Equal(["sh", "--help"], Parse("host", "sh", "--help").Spec.Command);

    [Fact]
    public void RootFs_Directory_IsResolvedToAnAbsolutePath()
    {
        var spec = Parse(_dir, "/bin/sh").Spec;
        Assert.Equal(RootFileSystem.FromDirectory(_dir), spec.RootFileSystem);
    }

    [Fact]
    public void Volumes_AndTmpfs_KeepTheirOrder()
    {
        var ro = Path.Combine(_dir, "ro");
        Directory.CreateDirectory(ro);
        var spec = Parse(
            "-v", $"{_dir}:/data", "--tmpfs", "/run", "--volume", $"{ro}:/config:ro", "--tmpfs=/scratch:rw,size=64m",
            "-v", $"{ro}:/again:rw", "--tmpfs", "/ro:ro", "host", "true").Spec;

        Assert.Equal(
            [
                new MountSpec(MountKind.Bind, _dir, "/data"),
                new MountSpec(MountKind.Tmpfs, null, "/run"),
                new MountSpec(MountKind.Bind, ro, "/config", ReadOnly: true),
                new MountSpec(MountKind.Tmpfs, null, "/scratch", SizeBytes: 64L << 20),
                new MountSpec(MountKind.Bind, ro, "/again"),
                new MountSpec(MountKind.Tmpfs, null, "/ro", ReadOnly: true),
            ],
            spec.Mounts);
    }

    [Fact]
    public void Volume_RelativeHostPathWithDot_IsResolved()
    {
        var cwd = Environment.CurrentDirectory;
        var spec = Parse("-v", "./:/data", "host", "true").Spec;
        Assert.Equal(Path.GetFullPath(cwd), spec.Mounts[0].Source!.TrimEnd('/'));
    }
}
