using System.IO.Compression;
using System.Xml.Linq;

namespace IsoTest.Packaging.Tests;

[Collection(PackedFeedCollection.Name)]
public class PackageTests(PackedFeed feed)
{
    public static TheoryData<string> Packages => new() { "IsoTest", "IsoTest.Engine", "IsoTest.Docker", "IsoTest.Xunit", "IsoTest.Xunit.V3", "IsoTest.Cli" };

    [Theory]
    [MemberData(nameof(Packages))]
    public void Every_package_has_the_one_version_a_readme_the_license_the_repository_and_symbols(string id)
    {
        using var package = ZipFile.OpenRead(feed.Package(id));
        var nuspec = XDocument.Load(package.Entries.Single(e => e.FullName == $"{id}.nuspec").Open());
        var metadata = nuspec.Root!.Elements().Single(e => e.Name.LocalName == "metadata");
        string? Field(string name) => metadata.Elements().SingleOrDefault(e => e.Name.LocalName == name)?.Value;
        var repository = metadata.Elements().Single(e => e.Name.LocalName == "repository");

        Assert.Equal(feed.Version, Field("version"));
        Assert.Equal("MIT", Field("license"));
        Assert.Equal("README.md", Field("readme"));
        Assert.Contains(package.Entries, e => e.FullName == "README.md" && e.Length > 0);
        Assert.Contains(package.Entries, e => e.FullName == "LICENSE" && e.Length > 0);
        Assert.Equal("git", repository.Attribute("type")?.Value);
        Assert.StartsWith("https://", repository.Attribute("url")?.Value);
        Assert.Matches("^[0-9a-f]{40}$", repository.Attribute("commit")?.Value ?? "");
        Assert.True(File.Exists(feed.SymbolPackage(id)), $"{id} has no symbol package (.snupkg)");
    }

    [Theory]
    [InlineData("IsoTest", "lib/net10.0/IsoTest.pdb")]
    [InlineData("IsoTest.Engine", "lib/net10.0/IsoTest.Engine.pdb")]
    [InlineData("IsoTest.Docker", "lib/net10.0/IsoTest.Docker.pdb")]
    public void Symbols_carry_SourceLink_to_the_commit_that_was_built(string id, string pdb)
    {
        using var symbols = ZipFile.OpenRead(feed.SymbolPackage(id));
        using var reader = new StreamReader(symbols.GetEntry(pdb)!.Open(), System.Text.Encoding.Latin1);
        var text = reader.ReadToEnd();

        // The SourceLink JSON maps the checkout to raw.githubusercontent.com/<owner>/<repo>/<commit>/*.
        Assert.Matches(@"""documents"":\{""[^""]+"":""https://raw\.githubusercontent\.com/[^/]+/[^/]+/[0-9a-f]{40}/\*""\}", text);
    }

    [Theory]
    [InlineData("IsoTest.Engine", "runtimes/linux-x64/native/isotest-init", 62)]
    [InlineData("IsoTest.Engine", "runtimes/linux-arm64/native/isotest-init", 183)]
    [InlineData("IsoTest.Cli", "tools/net10.0/any/runtimes/linux-x64/native/isotest-init", 62)]
    [InlineData("IsoTest.Cli", "tools/net10.0/any/runtimes/linux-arm64/native/isotest-init", 183)]
    public void The_agent_is_prebuilt_static_for_both_architectures(string id, string path, int machine)
    {
        using var package = ZipFile.OpenRead(feed.Package(id));
        var entry = package.GetEntry(path);
        Assert.NotNull(entry);
        using var stream = new MemoryStream();
        entry.Open().CopyTo(stream);
        var elf = stream.ToArray();

        Assert.Equal([0x7f, (byte)'E', (byte)'L', (byte)'F', 2], elf[..5]); // ELF, 64-bit
        Assert.Equal(machine, elf[18] | (elf[19] << 8));                   // e_machine: EM_X86_64 62, EM_AARCH64 183
        Assert.Equal(2, elf[16] | (elf[17] << 8));                          // ET_EXEC: not a PIE needing a loader
        Assert.DoesNotContain(ProgramHeaderTypes(elf), type => type is 2 or 3); // no PT_DYNAMIC, no PT_INTERP: static
    }

    [Fact]
    public void The_core_package_does_not_depend_on_Docker()
    {
        using var package = ZipFile.OpenRead(feed.Package("IsoTest"));
        var nuspec = new StreamReader(package.Entries.Single(e => e.FullName == "IsoTest.nuspec").Open()).ReadToEnd();

        Assert.DoesNotContain("Docker.DotNet", nuspec);
        Assert.Contains("Docker.DotNet", new StreamReader(ZipFile.OpenRead(feed.Package("IsoTest.Docker")).Entries.Single(e => e.FullName == "IsoTest.Docker.nuspec").Open()).ReadToEnd());
    }

    [Theory]
    [InlineData("xunit-v2", "XunitV2")]
    [InlineData("xunit-v3", "XunitV3")]
    public void A_fresh_xunit_project_runs_a_container_test_on_the_engine_without_a_C_compiler(string name, string consumer)
    {
        AssertNoCompilerOn(feed.NoCompilerPath);
        var project = feed.NewProject(name, consumer);

        var test = feed.RunAsConsumer(project, "dotnet", "test", "-nologo", "--logger", "trx;LogFileName=result.trx", "--results-directory", Path.Combine(project, "results"));

        // Quoted without "Passed:", which the CI's closing line counts.
        Assert.True(test.ExitCode == 0, $"dotnet test of the fresh {name} project failed ({test.ExitCode}):\n{test.Output.Replace("Passed:", "passed", StringComparison.Ordinal)}");
        var trx = XDocument.Load(Path.Combine(project, "results", "result.trx"));
        var counters = trx.Descendants().Single(e => e.Name.LocalName == "Counters");
        Assert.Equal("1", counters.Attribute("total")?.Value);
        Assert.Equal("1", counters.Attribute("passed")?.Value);
        var result = trx.Descendants().Single(e => e.Name.LocalName == "UnitTestResult");
        Assert.Equal("Consumer.ContainerTests.Runs_in_its_own_container_on_the_engine", result.Attribute("testName")?.Value);
        Assert.Equal("Passed", result.Attribute("outcome")?.Value);
    }

    [Theory]
    [InlineData("xunit-v2-no-attribute", "XunitV2")]
    [InlineData("xunit-v3-no-attribute", "XunitV3")]
    public void A_project_without_UseIsoTest_gets_it_from_the_package_and_opting_out_is_a_build_error_naming_it(string name, string consumer)
    {
        var project = feed.NewProject(name, consumer);
        var source = Path.Combine(project, "ContainerTests.cs");
        var text = File.ReadAllText(source);
        Assert.Contains("[assembly: UseIsoTest]", text);
        File.WriteAllText(source, text.Replace("[assembly: UseIsoTest]", "", StringComparison.Ordinal));

        // Forgotten: the package's generator adds it, and the container test runs (not xunit's "Fact methods are not allowed to have parameters").
        var test = feed.RunAsConsumer(project, "dotnet", "test", "-nologo", "--logger", "trx;LogFileName=result.trx", "--results-directory", Path.Combine(project, "results"));
        Assert.True(test.ExitCode == 0, $"dotnet test of {name} failed ({test.ExitCode}):\n{test.Output.Replace("Passed:", "passed", StringComparison.Ordinal)}");
        var counters = XDocument.Load(Path.Combine(project, "results", "result.trx")).Descendants().Single(e => e.Name.LocalName == "Counters");
        Assert.Equal("1", counters.Attribute("passed")?.Value);

        // Opted out: the build fails, and the error names the attribute to add.
        var build = feed.RunAsConsumer(project, "dotnet", "build", "-nologo", "-p:IsoTestUseTestFramework=false");
        Assert.NotEqual(0, build.ExitCode);
        Assert.Contains("error ISOTEST001: [ContainerFixture] has no effect without the IsoTest test framework: add [assembly: UseIsoTest]", build.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void The_isotest_tool_installs_from_the_feed_and_runs_a_container()
    {
        AssertNoCompilerOn(feed.NoCompilerPath);
        var tools = Path.Combine(feed.Root, "tools");

        var install = feed.RunAsConsumer(feed.Root, "dotnet", "tool", "install", "--add-source", feed.Feed, "--tool-path", tools, "--version", feed.Version, "IsoTest.Cli");
        Assert.True(install.ExitCode == 0, $"dotnet tool install failed ({install.ExitCode}):\n{install.Output}");

        var run = feed.RunAsConsumer(feed.Root, Path.Combine(tools, "isotest"), "run", "--rm", "host", "true");
        Assert.True(run.ExitCode == 0, $"isotest run --rm host true exited {run.ExitCode}:\n{run.Output}");

        var pidns = feed.RunAsConsumer(feed.Root, Path.Combine(tools, "isotest"), "run", "--rm", "host", "readlink", "/proc/self/ns/pid");
        Assert.Equal(0, pidns.ExitCode);
        Assert.StartsWith("pid:[", pidns.Output);
        Assert.NotEqual(new FileInfo("/proc/self/ns/pid").LinkTarget, pidns.Output.Trim());
    }

    private static void AssertNoCompilerOn(string path)
    {
        foreach (var compiler in new[] { "cc", "gcc", "gcc-12", "musl-gcc", "clang", "aarch64-linux-gnu-gcc" })
        {
            Assert.True(PackedFeed.IsCompiler(compiler), compiler);
            Assert.DoesNotContain(path.Split(':'), dir => File.Exists(Path.Combine(dir, compiler)));
        }

        Assert.True(File.Exists(Path.Combine(path, "dotnet")), $"no dotnet on {path}");
    }

    /// <summary>The p_type of every program header of a little-endian ELF64 file.</summary>
    private static IEnumerable<uint> ProgramHeaderTypes(byte[] elf)
    {
        var phoff = BitConverter.ToInt64(elf, 0x20);
        var phentsize = BitConverter.ToUInt16(elf, 0x36);
        var phnum = BitConverter.ToUInt16(elf, 0x38);
        for (var i = 0; i < phnum; i++)
        {
            yield return BitConverter.ToUInt32(elf, (int)(phoff + (i * phentsize)));
        }
    }
}
