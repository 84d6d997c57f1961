namespace IsoTest.Engine.Native;

/// <summary>
/// The one nf_tables ruleset the engine writes (an outbound network's masquerade), as netfilter messages on a
/// <see cref="OpenNetfilter"/> socket, so no <c>nft</c> binary is needed. It lives in the network's own namespace
/// and goes with it.
/// </summary>
internal sealed partial class Netlink
{
    private const ushort NFNL_SUBSYS_NFTABLES = 10;
    private const ushort NFNL_MSG_BATCH_BEGIN = 16;
    private const ushort NFNL_MSG_BATCH_END = 17;
    private const ushort NFT_MSG_NEWTABLE = 0;
    private const ushort NFT_MSG_NEWCHAIN = 3;
    private const ushort NFT_MSG_NEWRULE = 6;
    private const byte NFPROTO_IPV4 = 2;

    private const ushort NFTA_TABLE_NAME = 1;
    private const ushort NFTA_CHAIN_TABLE = 1;
    private const ushort NFTA_CHAIN_NAME = 3;
    private const ushort NFTA_CHAIN_HOOK = 4;
    private const ushort NFTA_CHAIN_TYPE = 7;
    private const ushort NFTA_HOOK_HOOKNUM = 1;
    private const ushort NFTA_HOOK_PRIORITY = 2;
    private const ushort NFTA_RULE_TABLE = 1;
    private const ushort NFTA_RULE_CHAIN = 2;
    private const ushort NFTA_RULE_EXPRESSIONS = 4;
    private const ushort NFTA_LIST_ELEM = 1;
    private const ushort NFTA_EXPR_NAME = 1;
    private const ushort NFTA_EXPR_DATA = 2;
    private const ushort NFTA_META_DREG = 1;
    private const ushort NFTA_META_KEY = 2;
    private const ushort NFTA_CMP_SREG = 1;
    private const ushort NFTA_CMP_OP = 2;
    private const ushort NFTA_CMP_DATA = 3;
    private const ushort NFTA_DATA_VALUE = 1;

    private const uint NF_INET_POST_ROUTING = 4;
    private const uint NF_IP_PRI_NAT_SRC = 100;
    private const uint NFT_META_OIFNAME = 7;
    private const uint NFT_REG_1 = 1;
    private const uint NFT_CMP_EQ = 0;
    private const int IFNAMSIZ = 16;

    /// <summary>
    /// <c>table ip isotest { chain postrouting { type nat hook postrouting priority srcnat; oifname "<paramref name="outInterface"/>" masquerade } }</c>:
    /// what leaves through <paramref name="outInterface"/> takes that link's address. One batch: all of it or nothing.
    /// </summary>
    public void Masquerade(string outInterface)
    {
        const string Table = "isotest", Chain = "postrouting";
        var begin = new Message(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST);
        begin.NfGen(0, NFNL_SUBSYS_NFTABLES);

        var table = NfTables(NFT_MSG_NEWTABLE);
        table.AttrString(NFTA_TABLE_NAME, Table);

        var chain = NfTables(NFT_MSG_NEWCHAIN);
        chain.AttrString(NFTA_CHAIN_TABLE, Table);
        chain.AttrString(NFTA_CHAIN_NAME, Chain);
        int hook = chain.Begin(NFTA_CHAIN_HOOK | NLA_F_NESTED);
        chain.AttrBe32(NFTA_HOOK_HOOKNUM, NF_INET_POST_ROUTING);
        chain.AttrBe32(NFTA_HOOK_PRIORITY, NF_IP_PRI_NAT_SRC);
        chain.End(hook);
        chain.AttrString(NFTA_CHAIN_TYPE, "nat");

        var rule = NfTables(NFT_MSG_NEWRULE);
        rule.AttrString(NFTA_RULE_TABLE, Table);
        rule.AttrString(NFTA_RULE_CHAIN, Chain);
        int expressions = rule.Begin(NFTA_RULE_EXPRESSIONS | NLA_F_NESTED);
        Expression(rule, "meta", m =>
        {
            m.AttrBe32(NFTA_META_KEY, NFT_META_OIFNAME);
            m.AttrBe32(NFTA_META_DREG, NFT_REG_1);
        });
        Expression(rule, "cmp", m =>
        {
            m.AttrBe32(NFTA_CMP_SREG, NFT_REG_1);
            m.AttrBe32(NFTA_CMP_OP, NFT_CMP_EQ);
            int data = m.Begin(NFTA_CMP_DATA | NLA_F_NESTED);
            var name = new byte[IFNAMSIZ]; // an exact interface name: the kernel compares all IFNAMSIZ bytes
            System.Text.Encoding.ASCII.GetBytes(outInterface, name);
            m.AttrBytes(NFTA_DATA_VALUE, name);
            m.End(data);
        });
        Expression(rule, "masq", null);
        rule.End(expressions);

        var end = new Message(NFNL_MSG_BATCH_END, NLM_F_REQUEST);
        end.NfGen(0, NFNL_SUBSYS_NFTABLES);
        Check(Transact([begin, table, chain, rule, end]), $"nf_tables masquerade through {outInterface}");
    }

    private static Message NfTables(ushort type)
    {
        var m = new Message((ushort)((NFNL_SUBSYS_NFTABLES << 8) | type), NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE);
        m.NfGen(NFPROTO_IPV4, 0);
        return m;
    }

    private static void Expression(Message rule, string name, Action<Message>? data)
    {
        int element = rule.Begin(NFTA_LIST_ELEM | NLA_F_NESTED);
        rule.AttrString(NFTA_EXPR_NAME, name);
        if (data is not null)
        {
            int start = rule.Begin(NFTA_EXPR_DATA | NLA_F_NESTED);
            data(rule);
            rule.End(start);
        }

        rule.End(element);
    }
}
