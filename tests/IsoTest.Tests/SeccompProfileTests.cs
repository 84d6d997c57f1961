using Xunit;

namespace IsoTest.Tests;

/// <summary>A Docker-format profile is read and checked once, when the spec is built; each problem names its JSON path.</summary>
public sealed class SeccompProfileTests
{
    private static readonly ContainerBuilder Valid = new ContainerBuilder().FromHost().WithCommand("true");

    public static TheoryData<string, string> BadProfiles => new()
    {
        { "not json", "not valid JSON" },
        { "[]", "a seccomp profile is a JSON object" },
        { """{"syscalls":[]}""", "defaultAction is missing" },
        { """{"defaultAction":"SCMP_ACT_DENY"}""", "defaultAction: unknown action 'SCMP_ACT_DENY'" },
        { """{"defaultAction":"SCMP_ACT_NOTIFY"}""", "SCMP_ACT_NOTIFY needs a seccomp agent" },
        { """{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":-1}""", "defaultErrnoRet: must be a number from 0 to 65535" },
        { """{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_Z80"]}""", "architectures[0]: unknown architecture 'SCMP_ARCH_Z80'" },
        { """{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}""", "both architectures and archMap" },
        { """{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"action":"SCMP_ACT_ALLOW"}]}""", "syscalls[0].names: no syscall named" },
        { """{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"]}]}""", "syscalls[0].action: missing" },
        { """{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"name":"read","names":["write"],"action":"SCMP_ACT_ALLOW"}]}""", "both name and names" },
        { """{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}""", "syscalls[0].args[0].index: 6 is out of range" },
        { """{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_IN"}]}]}""", "syscalls[0].args[0].op: unknown operator 'SCMP_CMP_IN'" },
        { """{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":-5,"op":"SCMP_CMP_EQ"}]}]}""", "syscalls[0].args[0].value: must be a number" },
        { """{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"5"}}]}""", "syscalls[0].includes.minKernel: '5' is not a kernel version" },
        { """{"defaultAction":"SCMP_ACT_ERRNO","flags":["SECCOMP_FILTER_FLAG_NEW_LISTENER"]}""", "flags[0]: unknown flag" },
        { """{"defaultAction":"SCMP_ACT_ERRNO","listenerPath":"/run/agent.sock"}""", "listenerPath: seccomp user notification" },
    };

    [Theory]
    [MemberData(nameof(BadProfiles))]
    public void Build_BadProfile_NamesThePathAndTheFix(string json, string expected)
    {
        var ex = Assert.Throws<InvalidContainerSpecException>(() => Valid.WithSeccompProfile(SeccompProfile.FromJson(json)).Build());

        Assert.Contains(ex.Errors, e => e.StartsWith("WithSeccompProfile(inline JSON)", StringComparison.Ordinal) && e.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void Build_SeveralProblems_AllReported()
    {
        var json = """{"defaultAction":"SCMP_ACT_NOPE","syscalls":[{"names":["read"],"action":"SCMP_ACT_X"},{"names":[],"action":"SCMP_ACT_ALLOW"}]}""";

        var ex = Assert.Throws<InvalidContainerSpecException>(() => Valid.WithSeccompProfile(json).Build());

        Assert.Equal(3, ex.Errors.Count);
    }

    [Fact]
    public void Build_MissingFile_SaysWhichAndWhatToGive()
    {
        var ex = Assert.Throws<InvalidContainerSpecException>(() => Valid.WithSeccompProfile("/nonexistent/profile.json").Build());

        Assert.Contains("cannot read the seccomp profile /nonexistent/profile.json", Assert.Single(ex.Errors));
    }

    [Fact]
    public void Build_FileProfile_IsReadOnceIntoTheSpec()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, """{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["keyctl"],"action":"SCMP_ACT_ERRNO","errnoRet":38}]}""");

            var spec = Valid.WithSeccompProfile(file).Build();
            File.Delete(file);

            Assert.Equal(file, spec.Seccomp.SourcePath);
            Assert.Contains("keyctl", spec.Seccomp.Json, StringComparison.Ordinal);
            Assert.NotNull(spec.Seccomp.Document);
            Assert.Equal(38u, spec.Seccomp.Document.Syscalls[0].Action.Data);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void Parse_TakesWhatDockersSecurityOptTakes()
    {
        Assert.Same(SeccompProfile.Unconfined, SeccompProfile.Parse("unconfined"));
        Assert.Same(SeccompProfile.Default, SeccompProfile.Parse("default"));
        Assert.Equal("inline JSON", SeccompProfile.Parse(" {\"defaultAction\":\"SCMP_ACT_ALLOW\"}").Name);
        Assert.Equal("/etc/p.json", SeccompProfile.Parse("/etc/p.json").SourcePath);
        Assert.Same(SeccompProfile.Default, Valid.Build().Seccomp);
        Assert.Same(SeccompProfile.Unconfined, Valid.WithSeccompProfile(SeccompProfile.Unconfined).Build().Seccomp);
    }
}
