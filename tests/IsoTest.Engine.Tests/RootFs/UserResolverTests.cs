using IsoTest.Engine.RootFs;

namespace IsoTest.Engine.Tests.RootFs;

/// <summary>
/// The user databases are read inside the container's root (issue 8, finding 7): a directory root whose
/// etc/passwd is a symlink to /etc/shadow must not make `-u root` read the host's shadow.
/// </summary>
public sealed class UserResolverTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("isotest-users-").FullName;

    public UserResolverTests() => Directory.CreateDirectory(Path.Combine(_root, "etc"));

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private ResolvedRoot Root => new(false, [_root]);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Resolve_PasswdLinkedToTheHostsShadow_DoesNotReadTheHost(bool walk)
    {
        // The host's /etc/shadow has a "root" line whose third field is a number (days since the last
        // change), so reading it through the link would "resolve" root to that number.
        File.CreateSymbolicLink(Path.Combine(_root, "etc/passwd"), "/etc/shadow");

        var e = Assert.Throws<UnknownUserException>(() => UserResolver.Resolve("root", Root, walk));

        Assert.Contains("user 'root' is not in", e.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Resolve_AbsoluteAndDotDotLinks_AreFollowedInsideTheRoot(bool walk)
    {
        Directory.CreateDirectory(Path.Combine(_root, "usr/share/base"));
        File.WriteAllText(Path.Combine(_root, "usr/share/base/passwd"), "app:x:1234:4321:App:/home/app:/bin/sh\n");
        File.WriteAllText(Path.Combine(_root, "usr/share/base/group"), "staff:x:50:\n");

        // Absolute targets mean the root's /usr/..., and ".." cannot climb above the root.
        File.CreateSymbolicLink(Path.Combine(_root, "etc/passwd"), "/usr/share/base/passwd");
        File.CreateSymbolicLink(Path.Combine(_root, "etc/group"), "../../../../../usr/share/base/group");

        var user = UserResolver.Resolve("app:staff", Root, walk);

        Assert.Equal(new ResolvedUser(1234, 50, "/home/app"), user);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Resolve_ADirectoryLinkOutOfTheRoot_StaysInside(bool walk)
    {
        // etc itself a link to the host's /etc: inside the root that is the root's own etc, i.e. itself.
        Directory.Delete(Path.Combine(_root, "etc"));
        File.CreateSymbolicLink(Path.Combine(_root, "etc"), "/etc");

        Assert.Throws<UnknownUserException>(() => UserResolver.Resolve("root", Root, walk));
    }

    [Fact]
    public void Resolve_TheUsersLineHasANonNumericUid_IsAClearErrorNotAFormatException()
    {
        File.WriteAllText(Path.Combine(_root, "etc/passwd"), "app:x:abc:1000::/home/app:/bin/sh\n");

        var e = Assert.Throws<UnknownUserException>(() => UserResolver.Resolve("app", Root));

        Assert.Contains("/etc/passwd entry for 'app' has uid 'abc', which is not a number", e.Message);
    }

    [Fact]
    public void Resolve_ANumericUserWhoseLineHasABadGid_IsAClearError()
    {
        File.WriteAllText(Path.Combine(_root, "etc/passwd"), "app:x:1000:-1:app:/home/app:/bin/sh\n");

        var e = Assert.Throws<UnknownUserException>(() => UserResolver.Resolve("1000", Root));

        Assert.Contains("has gid '-1'", e.Message);
    }

    [Fact]
    public void Resolve_AGroupWithANonNumericGid_IsAClearError()
    {
        File.WriteAllText(Path.Combine(_root, "etc/passwd"), "app:x:1000:1000::/home/app:/bin/sh\n");
        File.WriteAllText(Path.Combine(_root, "etc/group"), "staff:x:many:\n");

        var e = Assert.Throws<UnknownUserException>(() => UserResolver.Resolve("app:staff", Root));

        Assert.Contains("/etc/group entry for 'staff' has gid 'many'", e.Message);
    }

    [Fact]
    public void Resolve_MalformedLinesOfOtherUsers_AreSkipped()
    {
        File.WriteAllText(Path.Combine(_root, "etc/passwd"), "broken\nbad:x:x:y::/:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n");

        var user = UserResolver.Resolve("app", Root);

        Assert.Equal((1000L, 1001L, "/home/app"), (user.Uid, user.Gid, user.Home));
    }

    [Fact]
    public void Resolve_HostRoot_ReadsTheHostsPasswd()
    {
        var user = UserResolver.Resolve("nobody", new ResolvedRoot(true, ["/"]));

        Assert.Equal(65534, user.Uid);
    }
}
