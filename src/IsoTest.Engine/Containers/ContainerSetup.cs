using System.Net.Sockets;
using IsoTest.Engine.Cgroups;
using IsoTest.Engine.Native;
using IsoTest.Engine.Networking;
using IsoTest.Engine.Process;
using IsoTest.Engine.RootFs;
using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Containers;

/// <summary>One run of a container: the init agent that runs it (shim outside, PID 1 inside) and its output.</summary>
internal sealed class ContainerRun(AgentClient agent, ContainerLogs logs)
{
    public AgentClient Agent { get; } = agent;

    public ContainerLogs Logs { get; } = logs;

    /// <summary>
    /// Ends the run: the agent kills every process and exits. Only an agent that does not answer is killed
    /// from outside, through init's pidfd (init's death empties the PID namespace). Returns whether it is gone.
    /// </summary>
    public async Task<bool> EndAsync()
    {
        Agent.Kill();
        if (await GoneWithinAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false))
        {
            return true;
        }

        Agent.KillInit();
        return await GoneWithinAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
    }

    private async Task<bool> GoneWithinAsync(TimeSpan timeout)
    {
        try
        {
            await Agent.Gone.Task.WaitAsync(timeout).ConfigureAwait(false);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }
}

/// <summary>
/// Makes what a container runs in: its cgroup (once), and for every run the staged files, the descriptors,
/// the network namespace and the spawned agent, set up as far as `created` (or, with the command sent
/// together with the spec, `started`).
/// </summary>
internal sealed class ContainerSetup(EngineContext context, string id, string name, ContainerSpec spec, ResolvedRoot root, ResolvedUser user, string hostname)
{
    private bool _joinedNetworks;

    public CgroupHandle? Cgroup { get; private set; }

    /// <summary>Takes the container off the user-defined networks its last run joined.</summary>
    public void DetachNetworks()
    {
        if (_joinedNetworks)
        {
            context.Network.Detach(id);
            _joinedNetworks = false;
        }
    }

    /// <summary>Its network namespace, on its user-defined networks already; a network's refusal names the container.</summary>
    private NetworkAttachment AttachNetwork()
    {
        try
        {
            var network = context.Network.Attach(spec, id, [name, hostname], context.IsRoot ? null : IdMaps.InHolder(user, root.Config is not null, context.Ranges));
            _joinedNetworks = network.Joined;
            return network;
        }
        catch (NetworkException e)
        {
            throw new ContainerStartException(id, $"Container {name}: {e.Message}", null, e);
        }
    }

    /// <summary>The engine's user namespace for this container's maps; its maker failing (newuidmap refusing the ranges) is reported as a per-container map would be.</summary>
    private async Task<SafeFileHandle> SharedUserNamespaceAsync(Namespaces.SharedUserNamespaces shared, IdMaps maps)
    {
        try
        {
            return await shared.ForAsync(maps).ConfigureAwait(false);
        }
        catch (AgentException e)
        {
            throw AgentErrors.SetupFailed(id, e.Error, null, null, isRoot: false);
        }
        catch (AgentGoneException)
        {
            throw new ContainerStartException(id, $"Container {name}: the maker of its user namespace exited without one.");
        }
    }

    /// <summary>Caps first: a cap that cannot be enforced fails before any process exists.</summary>
    public void CreateCgroup() => Cgroup = context.Cgroups.Create(context.State.EngineId, id, spec.Limits);

    public void DestroyCgroup()
    {
        if (Cgroup is { } cgroup)
        {
            context.Cgroups.Destroy(cgroup);
            Cgroup = null;
        }
    }

    /// <summary>
    /// Spawns the agent and waits until it has set the container up. With <paramref name="startWith"/> the
    /// command goes to the agent right behind the spec, so it starts as soon as the set-up is done, without a
    /// round trip through the engine in between. A run that fails is ended before the exception propagates.
    /// </summary>
    public async Task<ContainerRun> LaunchAsync(Payload? startWith, CancellationToken cancellationToken)
    {
        var staged = new List<string>();
        SafeFileHandle? stdoutAgent = null, stderrAgent = null, controlAgent = null;
        Socket? stdout = null, stderr = null;
        NetworkAttachment? network = null;
        SafeFileHandle? sharedUserns = null, mirror = null;
        ContainerRun? run = null;
        try
        {
            var files = StageFiles(staged);
            network = AttachNetwork();
            // Rootless on networks the user namespace is the network holder's, mapped already (NetnsMode.JoinWithUser);
            // with subordinate ranges a private container joins the engine's for its maps (fd 5); else the agent makes one.
            var idMaps = context.IsRoot || network.Mode == NetnsMode.JoinWithUser ? null : IdMaps.ForContainer(user, root.Config is not null, Credentials.EffectiveUid, Credentials.EffectiveGid, context.Ranges);
            var maps = idMaps;
            if (idMaps is not null && context.UserNamespaces is { } shared)
            {
                sharedUserns = Fd.Duplicate(await SharedUserNamespaceAsync(shared, idMaps).ConfigureAwait(false));
                idMaps = null;
            }

            // A private network with the shared user namespace: a namespace made ahead in it (fd 4), when one is ready.
            if (sharedUserns is not null && network.Mode == NetnsMode.New && context.UserNetns?.TryTake(maps!, sharedUserns) is { } ready)
            {
                network.Dispose();
                network = new NetworkAttachment(NetnsMode.Join, ready);
            }

            // A member of user-defined networks gets the driver's /etc/hosts and /etc/resolv.conf, under the user's mounts.
            var built = network.Mounts.Count > 0 ? spec with { Mounts = [.. network.Mounts, .. spec.Mounts] } : spec;
            // The host root's mirror made ahead (fd 6: a mount namespace to join), when this container's mounts and files
            // leave its shape alone; its sources are what init opens in that namespace's copy of the host's table.
            string? mirrorStage = null;
            if (sharedUserns is not null && root.IsHost && context.HostMirrors is { } mirrors
                && HostMirrors.Fits(built.Mounts.Select(m => m.Target).Concat(files.Select(f => f.File.Target))))
            {
                string[] sources = [.. built.Mounts.Where(m => m.Source is not null).Select(m => Path.GetFullPath(m.Source!)), .. files.Select(f => f.HostPath)];
                mirror = await mirrors.TakeAsync(maps!, sharedUserns, AgentProtocol.TmpfsSizes(built.Limits.MemoryBytes).Layer, root.Submounts, root.ReadOnlyTrees, sources).ConfigureAwait(false);
                mirrorStage = mirror is null ? null : mirrors.Stage;
            }

            var messages = new List<byte[]> { AgentProtocol.Spec(new AgentSetup(built, root, hostname, user, idMaps, Cgroup?.Join, files, network.Mode, context.CommandIsPid1, JoinUserNamespace: sharedUserns is not null, HostMirrorStage: mirrorStage)) };
            if (startWith is not null)
            {
                messages.Add(AgentProtocol.Start(startWith));
            }

            var (outEngine, outAgent) = Fd.StreamPair();
            var (errEngine, errAgent) = Fd.StreamPair();
            var (controlEngine, ctlAgent) = Fd.SeqPacketPair();
            (stdoutAgent, stderrAgent, controlAgent) = (outAgent, errAgent, ctlAgent);
            stdout = Fd.ToSocket(outEngine);
            stderr = Fd.ToSocket(errEngine);
            var agent = new AgentClient(id, new AgentSocket(controlEngine));
            run = new ContainerRun(agent, new ContainerLogs(context.Time));

            // The loop spawns the agent, closes its ends here and sends it the messages at once.
            // The shared user namespace goes on fd 5; fd 4 holds the network namespace made ahead in it (netns 2), else
            // /dev/null; a mirror made ahead on fd 6.
            SafeFileHandle[] agentEnds = sharedUserns is null ? [outAgent, errAgent, ctlAgent, .. network.AgentFds]
                : mirror is null ? [outAgent, errAgent, ctlAgent, network.Namespace ?? Fd.Duplicate(context.DevNull), sharedUserns]
                : [outAgent, errAgent, ctlAgent, network.Namespace ?? Fd.Duplicate(context.DevNull), sharedUserns, mirror];
            await context.Loop.SpawnAsync(context.AgentPath, context.DevNull, agentEnds, agent.Control, agent, messages).ConfigureAwait(false);
            run.Logs.Start(stdout, stderr);
            (stdout, stderr) = (null, null);

            try
            {
                await agent.Created.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (AgentException e)
            {
                var cgroup = Cgroup;
                throw AgentErrors.SetupFailed(id, e.Error, run.Logs.Tail(), cgroup is null ? null : () => context.Cgroups.JoinRefused(cgroup, context.Loop.SpawnerPid(context.AgentPath)), context.IsRoot);
            }
            catch (AgentGoneException)
            {
                throw new ContainerStartException(id, $"Container {id}: the init agent exited during setup.", run.Logs.Tail());
            }

            return run;
        }
        catch
        {
            if (run is not null)
            {
                await run.EndAsync().ConfigureAwait(false);
            }

            throw;
        }
        finally
        {
            stdoutAgent?.Dispose();
            stderrAgent?.Dispose();
            controlAgent?.Dispose();
            network?.Dispose();
            sharedUserns?.Dispose();
            mirror?.Dispose();
            stdout?.Dispose();
            stderr?.Dispose();

            // The agent has copied the files in once it said `created` (or failed): the staged copies can go.
            foreach (var path in staged)
            {
                File.Delete(path);
            }
        }
    }

    /// <summary>File contents go to the engine's state directory; the agent copies them in before start.</summary>
    private List<StagedFile> StageFiles(List<string> staged)
    {
        var result = new List<StagedFile>();
        int n = 0;
        foreach (var file in spec.Files)
        {
            if (file.SourcePath is not null)
            {
                result.Add(new StagedFile(Path.GetFullPath(file.SourcePath), file));
                continue;
            }

            var path = Path.Combine(context.State.Directory, $"{id}-file{n++}");
            EngineState.WritePrivateFile(path, file.Content!.Value.Span);
            staged.Add(path);
            result.Add(new StagedFile(path, file));
        }

        return result;
    }
}
