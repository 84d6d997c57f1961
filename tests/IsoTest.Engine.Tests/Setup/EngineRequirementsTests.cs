using IsoTest.Engine;

namespace IsoTest.Engine.Tests.Setup;

public class EngineRequirementsTests
{
    [Theory]
    [InlineData("kernel/unprivileged_userns_clone", "0", "kernel.unprivileged_userns_clone=1")]
    [InlineData("user/max_user_namespaces", "0", "user.max_user_namespaces=15000")]
    [InlineData("kernel/apparmor_restrict_unprivileged_userns", "1", "kernel.apparmor_restrict_unprivileged_userns=0")]
    public void Rootless_UserNamespacesForbidden_SaysWhichSwitchAndTheFix(string sysctl, string value, string fix)
    {
        var e = Assert.Throws<BackendUnavailableException>(() => EngineRequirements.Check(root: false, name => name == sysctl ? value : null));

        Assert.Contains("unprivileged user namespaces", e.Message);
        Assert.Contains($"sysctl -w {fix}", e.Message);
        Assert.Contains("ISOTEST_BACKEND=docker", e.Message);
    }

    [Fact]
    public void Rootless_UserNamespacesAllowed_Passes()
    {
        EngineRequirements.Check(root: false, name => name switch
        {
            "kernel/unprivileged_userns_clone" => "1",
            "user/max_user_namespaces" => "15000",
            "kernel/apparmor_restrict_unprivileged_userns" => "0",
            _ => null,
        });
    }

    [Fact]
    public void Root_NeedsNoUserNamespaces()
    {
        EngineRequirements.Check(root: true, _ => "0");
    }

    [Fact]
    public void ReadSysctl_ReadsTheKernelsValue_AndNullForAMissingSwitch()
    {
        Assert.Equal(File.ReadAllText("/proc/sys/kernel/pid_max").Trim(), EngineRequirements.ReadSysctl("kernel/pid_max"));
        Assert.Null(EngineRequirements.ReadSysctl("kernel/no_such_switch_isotest"));
    }

    [Fact]
    public void RootlessKernelNote_BeforeLinux66_NamesTheVersionWhatFailsAndTheFix_NothingFromThenOnOrAsRoot()
    {
        var note = EngineRequirements.RootlessKernelNote(root: false, new Version(6, 1, 0));

        Assert.NotNull(note);
        Assert.Contains("Linux 6.1", note);
        Assert.Contains("EIO", note);
        Assert.Contains("Linux 6.6", note);
        Assert.Null(EngineRequirements.RootlessKernelNote(root: false, new Version(6, 6, 0)));
        Assert.Null(EngineRequirements.RootlessKernelNote(root: false, new Version(6, 18, 44)));
        Assert.Null(EngineRequirements.RootlessKernelNote(root: true, new Version(5, 10, 0)));
    }
}

public sealed class AgentLocatorTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("isotest-agent-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Candidates_IncludeThePackagesRuntimesLayoutForThisArchitecture()
    {
        var arch = System.Runtime.InteropServices.RuntimeInformation.OSArchitecture == System.Runtime.InteropServices.Architecture.Arm64 ? "arm64" : "x64";
        var candidates = AgentLocator.Candidates().ToList();

        Assert.Equal(Path.Combine(AppContext.BaseDirectory, "isotest-init"), candidates[0]);
        Assert.Contains(Path.Combine(AppContext.BaseDirectory, "runtimes", $"linux-{arch}", "native", "isotest-init"), candidates);
    }

    [Fact]
    public void Find_TakesTheFirstThatExists_AndRestoresTheExecuteBitNuGetDrops()
    {
        var agent = Path.Combine(_dir, "runtimes", "linux-x64", "native", "isotest-init");
        Directory.CreateDirectory(Path.GetDirectoryName(agent)!);
        File.WriteAllBytes(agent, [0x7f, (byte)'E', (byte)'L', (byte)'F']); // too short to name a machine
        File.SetUnixFileMode(agent, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        var found = AgentLocator.Find([Path.Combine(_dir, "isotest-init"), agent]);

        Assert.Equal(agent, found);
        Assert.True((File.GetUnixFileMode(agent) & UnixFileMode.UserExecute) != 0);
        Assert.True((File.GetUnixFileMode(agent) & UnixFileMode.OtherExecute) != 0);
    }

    [Fact]
    public void Find_SkipsAnAgentBuiltForAnotherArchitecture()
    {
        var native = Path.Combine(AppContext.BaseDirectory, "isotest-init");
        var thisMachine = System.Runtime.InteropServices.RuntimeInformation.OSArchitecture == System.Runtime.InteropServices.Architecture.Arm64 ? (byte)183 : (byte)62;
        var other = Path.Combine(_dir, "isotest-init");
        var header = File.ReadAllBytes(native).AsSpan(0, 64).ToArray();
        Assert.Equal(thisMachine, header[18]);
        header[18] = thisMachine == 62 ? (byte)183 : (byte)62;
        File.WriteAllBytes(other, header);

        Assert.False(AgentLocator.IsForThisMachine(other));
        Assert.True(AgentLocator.IsForThisMachine(native));
        Assert.Equal(native, AgentLocator.Find([other, native]));
    }

    [Fact]
    public void Find_Nowhere_SaysWhereItLookedAndWhatToDo()
    {
        var missing = Path.Combine(_dir, "isotest-init");

        var e = Assert.Throws<BackendUnavailableException>(() => AgentLocator.Find([missing]));

        Assert.Contains(missing, e.Message);
        Assert.Contains("runtimes/<rid>/native/", e.Message);
        Assert.Contains("ISOTEST_BACKEND=docker", e.Message);
    }
}
